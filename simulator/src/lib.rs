//! `voltgate-sim`: simulated OCPP 1.6J and 2.0.1 chargers that exercise the Voltgate gateway,
//! and the load generator that measures how far it goes.
//!
//! The crate is split so that behaviour can be tested without the network:
//! - [`model`]: one charger as a pure state machine (no I/O, time passed in);
//! - [`driver`]: the WebSocket client that runs a model against the gateway;
//! - [`quirks`]: chargers that bend the schemas the way real firmware does (`--quirks`);
//! - [`operator`]: registration and operator commands through the gateway's HTTP API;
//! - [`run`]: a whole load run (ramp, steady window, stop) and its [`run::RunReport`];
//! - [`split`]: one run spread over several processes when one may not open enough files;
//! - [`stats`], [`report`], [`procfs`]: what is measured and how it is shown;
//! - [`verdict`]: the checks behind the exit code, the JSON report's envelope, JUnit output;
//! - [`cli`], [`tls`]: the command line and TLS settings.
//!
//! Architecture invariant: the simulator never depends on the role engine or the gateway
//! crate; it talks to the gateway only over OCPP and HTTP, and uses the shared codec
//! (`voltgate-ocpp`) for frames, versions and schemas.

pub mod cli;
pub mod driver;
pub mod model;
pub mod operator;
pub mod procfs;
pub mod quirks;
pub mod report;
pub mod run;
pub mod split;
pub mod stats;
pub mod tls;
pub mod verdict;
