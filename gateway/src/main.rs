//! The `voltgate` binary: reads the command line and hands over to the library.

use std::process::ExitCode;

use voltgate::config::{parse_cli, CliCommand, ServeConfig};

fn main() -> ExitCode {
    let cli = parse_cli();
    match cli.command {
        Some(CliCommand::Policy(command)) => {
            match voltgate::policy_cli::run(command, &mut std::io::stdout().lock()) {
                Ok(code) => code,
                // A reader that stopped early (`voltgate policy matrix virta | head`) is not an error.
                Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(CliCommand::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn serve(config: ServeConfig) -> ExitCode {
    if let Err(err) = voltgate::init_tracing(config.log_format, &config.log) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(voltgate::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "gateway failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
