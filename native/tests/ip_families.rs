//! IPv4 and IPv6 over real loopback sockets: an IPv4 client to an IPv4 server, IPv6 to an
//! IPv6-only server, and both families to one dual-stack server. Ports are chosen by the OS
//! (port 0) and reported back; addresses are normalised so an IPv4 peer of a dual-stack
//! socket reads as plain IPv4.

mod common;

use std::net::SocketAddr;

use common::{WAIT, accept_one, connect, listen, ping, receive_n, wait_state};
use lanewire::{Config, ConnectionState, SendFlags, Sockets};

fn client_port(client: &Sockets, conn: lanewire::ConnectionHandle) -> SocketAddr {
    client.connection_info(conn).expect("live").remote
}

#[test]
fn ipv4_client_to_ipv4_server() {
    let (server, listen_h, addr) = listen("127.0.0.1:0", Config::new());
    assert_eq!(server.listen_socket_is_dual_stack(listen_h), Some(false));
    let client = Sockets::new().unwrap();
    let (c, s) = connect(&server, &client, addr, Config::new());
    ping(&client, c, &server, s);
    assert_eq!(client_port(&client, c), addr);
    let seen = server.connection_info(s).unwrap();
    assert!(seen.remote.is_ipv4(), "server sees {}", seen.remote);
    assert_eq!(seen.listen_socket, Some(listen_h));
}

#[test]
fn ipv6_client_to_ipv6_only_server() {
    let (server, listen_h, addr) = listen("[::1]:0", Config::new());
    assert!(addr.is_ipv6());
    assert_eq!(server.listen_socket_is_dual_stack(listen_h), Some(false));
    let client = Sockets::new().unwrap();
    let (c, s) = connect(&server, &client, addr, Config::new());
    ping(&client, c, &server, s);
    let seen = server.connection_info(s).unwrap().remote;
    assert_eq!(seen.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn ipv6_and_ipv4_clients_to_dual_stack_server() {
    let (server, listen_h, _) = listen("[::]:0", Config::new());
    assert_eq!(server.listen_socket_is_dual_stack(listen_h), Some(true));
    let port = server.listen_socket_address(listen_h).unwrap().port();
    let client = Sockets::new().unwrap();

    let v6 = client.connect_ip(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)), Config::new());
    let v6 = v6.unwrap();
    let s6 = accept_one(&server, WAIT);
    let v4 = client.connect_ip(SocketAddr::from(([127, 0, 0, 1], port)), Config::new()).unwrap();
    let s4 = accept_one(&server, WAIT);
    for (c, s) in [(v6, s6), (v4, s4)] {
        wait_state(&client, c, ConnectionState::Connected, WAIT);
        wait_state(&server, s, ConnectionState::Connected, WAIT);
        ping(&client, c, &server, s);
    }
    let r6 = server.connection_info(s6).unwrap().remote;
    let r4 = server.connection_info(s4).unwrap().remote;
    assert!(r6.is_ipv6(), "IPv6 client seen as {r6}");
    assert_eq!(r4.ip(), std::net::IpAddr::from([127, 0, 0, 1]), "IPv4 client seen as {r4}");

    // A v4-mapped destination is the same as the plain IPv4 one.
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().unwrap();
    let m = client.connect_ip(mapped, Config::new()).unwrap();
    assert_eq!(client.connection_info(m).unwrap().remote, SocketAddr::from(([127, 0, 0, 1], port)));
    let sm = accept_one(&server, WAIT);
    wait_state(&client, m, ConnectionState::Connected, WAIT);
    client.send(m, b"via mapped", SendFlags::RELIABLE_NO_NAGLE).unwrap();
    assert_eq!(receive_n(&server, sm, 1, WAIT)[0].data(), b"via mapped");
}
