//! Chat: one server, many clients, nicknames, `/nick`, `/quit`.
//!
//! ```text
//! cargo run -p lanewire --example chat -- server              # on [::]:27021
//! cargo run -p lanewire --example chat -- client alice        # to 127.0.0.1:27021
//! cargo run -p lanewire --example chat -- client bob 127.0.0.1:27021
//! ```
//!
//! The first message a client sends is its nickname; every later line goes to everyone.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

use lanewire::{Config, ConnectionHandle, ConnectionState, EndReason, SendFlags, Sockets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => server(args.get(1).map_or("[::]:27021", String::as_str)),
        Some("client") => {
            let nick = args.get(1).cloned().unwrap_or_else(|| "guest".into());
            client(&nick, args.get(2).map_or("127.0.0.1:27021", String::as_str))
        }
        _ => {
            eprintln!("usage: chat server [addr] | chat client <nick> [addr]");
            std::process::exit(2);
        }
    }
}

fn server(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let sockets = Sockets::new()?;
    let listen = sockets.listen_ip(addr.parse()?, Config::new())?;
    let group = sockets.create_poll_group();
    println!("chat server on {}", sockets.listen_socket_address(listen).unwrap());
    // Connection -> nickname (None until the client has sent it).
    let mut nicks: HashMap<ConnectionHandle, Option<String>> = HashMap::new();
    let broadcast = |nicks: &HashMap<ConnectionHandle, Option<String>>, text: &str| {
        println!("{text}");
        for (&c, nick) in nicks {
            if nick.is_some() {
                let _ = sockets.send(c, text.as_bytes(), SendFlags::RELIABLE);
            }
        }
    };
    loop {
        for ev in sockets.events() {
            if ev.is_incoming() {
                sockets.accept(ev.conn)?;
                sockets.set_poll_group(ev.conn, Some(group))?;
                nicks.insert(ev.conn, None);
            } else if ev.info.state.is_ended() {
                let _ = sockets.close(ev.conn, EndReason(0), "", false);
                if let Some(Some(nick)) = nicks.remove(&ev.conn) {
                    broadcast(&nicks, &format!("* {nick} left ({})", ev.info.end_debug));
                }
            }
        }
        for m in sockets.receive_on_poll_group_timeout(group, 64, Duration::from_millis(50))? {
            let text = String::from_utf8_lossy(m.data()).trim().to_string();
            let Some(nick) = nicks.get(&m.conn).cloned() else { continue };
            match (nick, text.split_once(' ').map_or((text.as_str(), ""), |(a, b)| (a, b))) {
                (None, _) => {
                    let name = if text.is_empty() { "guest".to_string() } else { text.clone() };
                    sockets.set_connection_name(m.conn, &name)?;
                    nicks.insert(m.conn, Some(name.clone()));
                    let who: Vec<_> = nicks.values().flatten().cloned().collect();
                    broadcast(&nicks, &format!("* {name} joined; here: {}", who.join(", ")));
                }
                (Some(old), ("/nick", new)) if !new.is_empty() => {
                    sockets.set_connection_name(m.conn, new)?;
                    nicks.insert(m.conn, Some(new.to_string()));
                    broadcast(&nicks, &format!("* {old} is now {new}"));
                }
                (Some(nick), _) => broadcast(&nicks, &format!("{nick}: {text}")),
            }
        }
    }
}

fn client(nick: &str, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let sockets = Sockets::new()?;
    let conn = sockets.connect_ip(addr.parse()?, Config::new())?;
    // Queued until connected.
    sockets.send(conn, nick.as_bytes(), SendFlags::RELIABLE)?;
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    println!("connecting to {addr} as {nick}; /nick <name> renames, /quit leaves");
    loop {
        for ev in sockets.events() {
            if ev.info.state == ConnectionState::Connected {
                println!("connected");
            } else if ev.info.state.is_ended() {
                println!("disconnected: {} {}", ev.info.end_reason, ev.info.end_debug);
                return Ok(());
            }
        }
        match lines.try_recv() {
            Ok(line) if line.trim() == "/quit" => {
                sockets.close(conn, EndReason(0), "quit", true)?;
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
            Ok(line) if !line.trim().is_empty() => {
                sockets.send(conn, line.as_bytes(), SendFlags::RELIABLE_NO_NAGLE)?;
            }
            Ok(_) | Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                sockets.close(conn, EndReason(0), "quit", true)?;
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
        }
        for m in sockets.receive_timeout(conn, 64, Duration::from_millis(20))? {
            println!("{}", String::from_utf8_lossy(m.data()));
        }
    }
}
