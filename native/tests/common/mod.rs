//! Helpers shared by the behaviour tests: connecting over real sockets with bounded waits,
//! and self-checking messages (the same format as the core's stress test).
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lanewire::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, ListenSocketHandle, SendFlags, Sockets,
};

mod skip;
#[allow(unused_imports)] // each test binary uses what it needs
pub use skip::{in_ci, skip};

/// Every wait in these tests is bounded by this unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits for the next incoming connection on `server` and accepts it.
pub fn accept_one(server: &Sockets, timeout: Duration) -> ConnectionHandle {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no incoming connection within {timeout:?}");
        if let Some(ev) = server.wait_event(left)
            && ev.is_incoming()
        {
            server.accept(ev.conn).expect("accept a fresh incoming connection");
            return ev.conn;
        }
    }
}

/// Waits until `conn` is in `state` (polling its info; events are left alone).
pub fn wait_state(s: &Sockets, conn: ConnectionHandle, state: ConnectionState, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = s.connection_info(conn).map(|i| i.state);
        if now == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connection {conn} is {now:?}, not {state:?}, after {timeout:?}: {:?}",
            s.connection_info(conn)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Connects `client` to `addr` where `server` listens; returns (client conn, server conn),
/// both connected.
pub fn connect(
    server: &Sockets,
    client: &Sockets,
    addr: SocketAddr,
    config: Config,
) -> (ConnectionHandle, ConnectionHandle) {
    let c = client.connect_ip(addr, config).expect("connect");
    let s = accept_one(server, WAIT);
    wait_state(client, c, ConnectionState::Connected, WAIT);
    wait_state(server, s, ConnectionState::Connected, WAIT);
    (c, s)
}

/// A server listening on `addr`, and its bound address (loopback for unspecified IPs).
pub fn listen(addr: &str, config: Config) -> (Sockets, ListenSocketHandle, SocketAddr) {
    let s = Sockets::new().expect("sockets");
    let l = s.listen_ip(addr.parse().unwrap(), config).expect("listen");
    let mut a = s.listen_socket_address(l).expect("bound address");
    assert_ne!(a.port(), 0, "port 0 must be reported as the port the OS chose");
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { [127, 0, 0, 1].into() } else { "::1".parse().unwrap() });
    }
    (s, l, a)
}

/// Receives exactly `n` messages on `conn` within `timeout`.
pub fn receive_n(
    s: &Sockets,
    conn: ConnectionHandle,
    n: usize,
    timeout: Duration,
) -> Vec<lanewire::Message> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "got {} of {n} messages in {timeout:?}", out.len());
        out.extend(s.receive_timeout(conn, n - out.len(), left).expect("valid handle"));
    }
    out
}

/// One message each way, checked.
pub fn ping(a: &Sockets, ac: ConnectionHandle, b: &Sockets, bc: ConnectionHandle) {
    a.send(ac, b"ping", SendFlags::RELIABLE_NO_NAGLE).expect("send ping");
    let m = receive_n(b, bc, 1, WAIT);
    assert_eq!(m[0].data(), b"ping");
    b.send(bc, b"pong", SendFlags::RELIABLE_NO_NAGLE).expect("send pong");
    let m = receive_n(a, ac, 1, WAIT);
    assert_eq!(m[0].data(), b"pong");
}

/// Global config for fast transfers: fixed high send rate and large buffers.
pub fn fast_config(rate: i32) -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, rate).unwrap();
    c.set_i32(ConfigKey::SendRateMax, rate).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 16 * 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 100_000).unwrap();
    c
}

#[allow(unused_imports)] // not every test binary that includes this module sends them
pub use lanewire_core::sim::{check_message, make_message};
