//! P2P echo peer: registers an identity at a signaling server, listens on a virtual port,
//! accepts every connection (native or browser) and sends each message back the way it came.
//! The native end of a browser-to-native test: start it next to the signaling server, then
//! `connectP2P('str:native-echo', 0)` from the page.
//!
//! ```text
//! cargo run -p lanewire --features webrtc --example p2p_echo -- ws://127.0.0.1:8787/ws
//! cargo run -p lanewire --features webrtc --example p2p_echo -- URL str:me 3 --loopback
//! ```
//!
//! Arguments: signaling URL, identity (default `str:native-echo`), virtual port (default 0);
//! `--loopback` binds ICE to 127.0.0.1 with loopback candidates (one machine, no network);
//! `--token T` for a server that checks tokens. Prints `ready` once registered.

use std::io::Write;
use std::time::Duration;

/// `println!` that does not panic when whoever reads stdout has gone (a closed pipe): the
/// echo service keeps running.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use lanewire::{Config, ConnectionState, EndReason, SendFlags, SignalingConfig, Sockets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let loopback = args.iter().any(|a| a == "--loopback");
    args.retain(|a| a != "--loopback");
    let token = args.iter().position(|a| a == "--token").map(|i| {
        let t = args.get(i + 1).cloned().unwrap_or_default();
        args.drain(i..(i + 2).min(args.len()));
        t
    });
    let url = args.first().cloned().unwrap_or_else(|| "ws://127.0.0.1:8787/ws".into());
    let identity = args.get(1).cloned().unwrap_or_else(|| "str:native-echo".into());
    let port: u32 = args.get(2).map(|p| p.parse()).transpose()?.unwrap_or(0);

    let mut config = SignalingConfig::new(&url, &identity);
    config.token = token;
    if loopback {
        config = config.loopback_only();
    }
    let sockets = Sockets::new()?;
    sockets.connect_signaling(config)?;
    sockets.listen_p2p(port, Config::new())?;
    let group = sockets.create_poll_group();
    say!("ready: {identity} listening on virtual port {port} via {url}");
    loop {
        sockets.run_callbacks(|ev| {
            let who = ev.info.remote_identity.clone().unwrap_or_default();
            match ev.info.state {
                ConnectionState::Connecting
                    if ev.is_incoming() && sockets.accept(ev.conn).is_ok() =>
                {
                    let _ = sockets.set_poll_group(ev.conn, Some(group));
                }
                ConnectionState::Connected => {
                    let route = sockets.p2p_connection_info(ev.conn).and_then(|p| p.route);
                    say!("{who} connected ({})", route.unwrap_or_default());
                }
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    say!("{who} left: {} {}", ev.info.end_reason, ev.info.end_debug);
                    let _ = sockets.close(ev.conn, EndReason(0), "", false);
                }
                _ => {}
            }
        });
        for m in sockets.receive_on_poll_group_timeout(group, 256, Duration::from_millis(50))? {
            let flags = if m.is_reliable() { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            let _ = sockets.send(m.conn, m.data(), flags | SendFlags::NO_NAGLE);
        }
    }
}
