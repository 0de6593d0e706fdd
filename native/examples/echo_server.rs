//! Echo server: accepts every connection and sends each message back the way it came.
//!
//! ```text
//! cargo run -p lanewire --example echo_server            # listens on [::]:27020
//! cargo run -p lanewire --example echo_server -- 0.0.0.0:9000
//! ```

use std::time::Duration;

use lanewire::{Config, ConnectionState, EndReason, SendFlags, Sockets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "[::]:27020".into()).parse()?;
    let sockets = Sockets::new()?;
    let listen = sockets.listen_ip(addr, Config::new())?;
    let group = sockets.create_poll_group();
    println!("echo server listening on {}", sockets.listen_socket_address(listen).unwrap());
    loop {
        sockets.run_callbacks(|ev| {
            let remote = ev.info.remote;
            match ev.info.state {
                // Accept everyone; a real server would check a ban list here.
                ConnectionState::Connecting
                    if ev.is_incoming() && sockets.accept(ev.conn).is_ok() =>
                {
                    let _ = sockets.set_poll_group(ev.conn, Some(group));
                }
                ConnectionState::Connected => println!("{remote} connected"),
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    println!("{remote} left: {} {}", ev.info.end_reason, ev.info.end_debug);
                    // Free the handle.
                    let _ = sockets.close(ev.conn, EndReason(0), "", false);
                }
                _ => {}
            }
        });
        for m in sockets.receive_on_poll_group_timeout(group, 256, Duration::from_millis(50))? {
            let flags = if m.is_reliable() { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            // Errors (the peer left meanwhile) are not worth stopping the server for.
            let _ = sockets.send(m.conn, m.data(), flags | SendFlags::NO_NAGLE);
        }
    }
}
