//! Echo client: sends each line typed on stdin to the echo server and prints what comes back,
//! with the round-trip time. End with Ctrl-D.
//!
//! ```text
//! cargo run -p lanewire --example echo_client            # connects to 127.0.0.1:27020
//! cargo run -p lanewire --example echo_client -- [::1]:27020
//! ```

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lanewire::{Config, ConnectionState, EndReason, SendFlags, Sockets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:27020".into()).parse()?;
    let sockets = Sockets::new()?;
    let conn = sockets.connect_ip(addr, Config::new())?;
    println!("connecting to {addr}...");

    // Stdin blocks, so it gets its own thread.
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut sent_at = std::collections::VecDeque::new();
    loop {
        for ev in sockets.events() {
            match ev.info.state {
                ConnectionState::Connected => println!("connected; type lines to echo"),
                s if s.is_ended() => {
                    println!("connection ended: {} {}", ev.info.end_reason, ev.info.end_debug);
                    return Ok(());
                }
                _ => {}
            }
        }
        match lines.try_recv() {
            Ok(line) => {
                sockets.send(conn, line.as_bytes(), SendFlags::RELIABLE_NO_NAGLE)?;
                sent_at.push_back(Instant::now());
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                // Ctrl-D: leave politely, delivering what is queued first.
                sockets.close(conn, EndReason(0), "bye", true)?;
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        for m in sockets.receive_timeout(conn, 64, Duration::from_millis(20))? {
            let rtt = sent_at.pop_front().map(|t| t.elapsed()).unwrap_or_default();
            println!(
                "echo: {} ({:.2} ms)",
                String::from_utf8_lossy(m.data()),
                rtt.as_secs_f64() * 1e3
            );
        }
    }
}
