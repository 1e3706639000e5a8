//! Test harness for the end-to-end suite: starts the real `voltgate` binary on loopback, talks to its
//! operator API over HTTP, and plays chargers over real WebSockets.
//!
//! Everything here is deliberately thin and independent of the gateway's own code: the suite must see
//! the gateway exactly as a charger and an operator would.

pub mod api;
pub mod charger;
pub mod gateway;
pub mod nats;
pub mod openapi;
pub mod ports;
pub mod postgres;
pub mod tls;

pub use api::Api;
pub use charger::{Charger, Received};
pub use gateway::{binary_path, Gateway, GatewayOptions};
pub use nats::NatsServer;
pub use postgres::PostgresServer;
