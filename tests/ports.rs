//! Loopback ports for tests that need an address where nothing answers.
//!
//! A port picked by binding and then closing a listener is free only until the next test binds
//! it; a node pointed there may then meet another test's server instead of a refusal. A
//! [`RefusingPort`] keeps the port bound without listening, so every connection to it is
//! refused for as long as the value lives.

use std::net::SocketAddr;

/// A loopback port held bound and never listened on.
pub struct RefusingPort {
    socket: tokio::net::TcpSocket,
}

impl RefusingPort {
    pub fn new() -> std::io::Result<RefusingPort> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        Ok(RefusingPort { socket })
    }

    pub fn port(&self) -> u16 {
        self.socket
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_default()
    }

    /// `127.0.0.1:port`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }
}
