//! Loopback ports for peers that are deliberately *down*.
//!
//! Every server of the kit binds `127.0.0.1:0` itself and serves on that
//! same listener, so no port changes hands. The one exception lives here: a
//! test of connection-refused, or of a peer that is down at first and comes
//! up later on a port the binary already targets, needs a port that nothing
//! listens on yet. That is bind, read the port, release; another process
//! could take the port in between, which is the accepted cost of testing an
//! outage. Start the late server with [`crate::Notifier::start_on`] or
//! [`crate::Notifier::start_later`].

/// A loopback port nothing listens on (connection refused) until a test
/// starts a server there.
pub fn unbound_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Binds `127.0.0.1:0` for a kit server (the server then serves on it).
pub(crate) async fn loopback_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}
