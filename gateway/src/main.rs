//! The `voltgate` binary: reads the command line and hands over to the library.

use std::io::Write;
use std::process::ExitCode;

use voltgate::config::{parse_cli, CliError, Invocation, ServeArgs};

fn main() -> ExitCode {
    let invocation = match parse_cli() {
        Ok(invocation) => invocation,
        Err(CliError::Usage(err)) => err.exit(),
        Err(CliError::File(err)) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match invocation {
        Invocation::Policy(command) => {
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
        Invocation::ConfigChecked(settings) => {
            let mut out = std::io::stdout().lock();
            match out
                .write_all(settings.as_bytes())
                .and_then(|()| out.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Invocation::Serve(config) => serve(*config),
        Invocation::AdminResetToken { db } => reset_admin_token(&db),
    }
}

fn reset_admin_token(db: &str) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let store = voltgate_store::open(db).await?;
                let reset = voltgate::reset_admin_token(store.as_ref()).await;
                store.close().await;
                Ok::<_, anyhow::Error>(reset?)
            })
        });
    match outcome {
        Ok((token, revoked)) => {
            println!("voltgate: admin token: {token}");
            eprintln!("voltgate: revoked {revoked} earlier admin token(s)");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn serve(args: ServeArgs) -> ExitCode {
    if let Err(err) = voltgate::logging::init(args.log_format, args.log.as_deref()) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let config = match args.resolve() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "gateway failed");
            return ExitCode::FAILURE;
        }
    };
    voltgate::open_files::raise_and_log(args.expected_chargers);
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
    let outcome = runtime.block_on(voltgate::run(config));
    // Whatever still runs (a charger that never finished closing, a stuck request) must not
    // hold up the exit: the shutdown already waited as long as it was allowed to.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Logged only: with `--log-format json` every stderr line must stay JSON.
            tracing::error!(error = %format!("{err:#}"), "gateway failed");
            ExitCode::FAILURE
        }
    }
}
