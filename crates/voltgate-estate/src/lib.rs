//! The estate: the role engine together with the store it mirrors, and the one write path for
//! every change the engine decides on.
//!
//! No sockets and no HTTP: the gateway's charger server and operator API are thin users of
//! it, and a change made here is the unit that the gateway audits, and that will cross nodes.

mod engine_lock;
mod estate;
mod load;

pub use engine_lock::{EngineRead, EngineWrite};
pub use estate::{ChangeError, CommitHook, Committed, Estate, Registration};
pub use load::{load_engine, pending_chargers};
