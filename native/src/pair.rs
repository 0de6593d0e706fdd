//! Socket pairs: two connections of one [`Sockets`] instance connected to each other.
//!
//! Both kinds run the full protocol (handshake, packetisation, acks and, once the core has
//! it, encryption); unlike the reference's in-memory pair, which bypasses all of that, ours
//! is an honest datagram pipe, so a pair behaves exactly like a network connection, fake
//! loss and lag included.
//!
//! - In memory (`loopback == false`): a hidden listener and a client end with no socket; the
//!   transmit path hands their datagrams straight back to the endpoint (addresses in the
//!   IPv6 discard prefix `100::/64`, which no real peer has). No system call per datagram.
//! - Loopback (`loopback == true`): a hidden listener on `127.0.0.1:0` and the shared IPv4
//!   client socket, through the kernel's UDP.
//!
//! Set-ups are serialised (one at a time per instance) so the incoming connection a hidden
//! listener sees is unambiguously the pair's; their status events are not shown to the
//! application, as in the reference (both sides are `Connected` when the call returns).

use std::net::SocketAddr;
use std::time::Duration;

use lanewire_core::{Config, ConnectionHandle, ConnectionState, EndReason};

use crate::Sockets;
use crate::state::{ListenEntry, PIPE_CLIENT_ADDR, PIPE_LISTENER_ADDR, PairExpect, State};
use crate::types::SocketError;
use crate::udp::UdpSock;

/// How long a pair may take to connect (loopback: a few round trips on the loopback device;
/// in memory: a few transmit passes).
const PAIR_TIMEOUT: Duration = Duration::from_secs(5);

impl Sockets {
    /// Two connections connected to each other, both `Connected` when this returns: in
    /// memory (`loopback == false`) or through real `127.0.0.1` UDP (`loopback == true`).
    /// Close both when done. See the module documentation for how they work.
    pub fn socket_pair(
        &self,
        loopback: bool,
    ) -> Result<(ConnectionHandle, ConnectionHandle), SocketError> {
        let _one_at_a_time = self.inner.pair_setup.lock().unwrap_or_else(|p| p.into_inner());
        let shared = self.shared();
        let (client, listener) = {
            let mut st = shared.lock();
            let (listener, client_end, server_addr, client_addr) = if loopback {
                let listener = self.loop_listener(&mut st)?;
                let server_addr = st.sockets[st.listen[&listener].local.0 as usize]
                    .as_ref()
                    .map(|s| s.local_addr())
                    .ok_or(SocketError::TimedOut)?;
                let client_end = self.client_socket(&mut st, true)?;
                let port = st.sockets[client_end.0 as usize]
                    .as_ref()
                    .map(|s| s.local_addr().port())
                    .ok_or(SocketError::TimedOut)?;
                (listener, client_end, server_addr, SocketAddr::from(([127, 0, 0, 1], port)))
            } else {
                let (listener, client_end) = Self::pipe(&mut st)?;
                (listener, client_end, PIPE_LISTENER_ADDR, PIPE_CLIENT_ADDR)
            };
            let now = st.now();
            let client = st.ep.connect(now, client_end, server_addr, Config::new())?;
            st.hidden.insert(client);
            st.pair_expect.push(PairExpect { listener, remote: client_addr, server: None });
            st.wake_if_needed(&shared.waker);
            (client, listener)
        };
        let deadline = std::time::Instant::now() + PAIR_TIMEOUT;
        loop {
            shared.transmit(false);
            let mut st = shared.lock();
            let now = st.now();
            st.collect_events(now);
            let server =
                st.pair_expect.iter().find(|p| p.listener == listener).and_then(|p| p.server);
            let state = |st: &State, c| st.ep.connection_info(c).map(|i| i.state);
            let c = state(&st, client);
            let s = server.and_then(|s| state(&st, s));
            let connected = Some(ConnectionState::Connected);
            let failed = |x: Option<ConnectionState>| x.is_none_or(|x| x.is_ended());
            let timed_out = std::time::Instant::now() >= deadline;
            if (c == connected && s == connected)
                || failed(c)
                || (server.is_some() && failed(s))
                || timed_out
            {
                st.pair_expect.retain(|p| p.listener != listener);
                st.hidden.remove(&client);
                if let Some(s) = server {
                    st.hidden.remove(&s);
                }
                if let (Some(s), true, true) = (server, c == connected, s == connected) {
                    return Ok((client, s));
                }
                for h in [Some(client), server].into_iter().flatten() {
                    let _ =
                        st.ep.close(now, h, EndReason::APP_GENERIC, "Socket pair failed", false);
                }
                drop(st);
                shared.transmit(false);
                return Err(SocketError::TimedOut);
            }
            if loopback {
                // The IO thread drives the loopback handshake; it signals on every event.
                st.waiters += 1;
                let slice = Duration::from_millis(10);
                st = shared.cond.wait_timeout(st, slice).unwrap_or_else(|p| p.into_inner()).0;
                st.waiters -= 1;
            } else if server.is_none() {
                // In memory, each transmit pass drives the pipe; a blocked UDP transmit (a
                // full socket buffer elsewhere) can hold a pass up briefly.
                drop(st);
                std::thread::yield_now();
            }
        }
    }

    /// The in-memory pipe's (hidden listener, client end), created on first use.
    fn pipe(
        st: &mut State,
    ) -> Result<(lanewire_core::ListenSocketHandle, lanewire_core::LocalId), SocketError> {
        if let (Some((_, client)), Some(listener)) = (st.pipe, st.pipe_listener) {
            return Ok((listener, client));
        }
        let listener_end = st.add_pipe_end();
        let client_end = st.add_pipe_end();
        let h = st
            .ep
            .create_listen_socket(listener_end, Config::new())
            .map_err(|e| SocketError::Io(std::io::Error::other(e.to_string())))?;
        st.listen
            .insert(h, ListenEntry { local: listener_end, config: Config::new(), hidden: true });
        st.pipe = Some((listener_end, client_end));
        st.pipe_listener = Some(h);
        Ok((h, client_end))
    }

    /// The hidden loopback listener, bound on first use.
    fn loop_listener(
        &self,
        st: &mut State,
    ) -> Result<lanewire_core::ListenSocketHandle, SocketError> {
        if let Some(h) = st.loop_listener {
            return Ok(h);
        }
        let sock = UdpSock::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let local = st.add_socket(&self.shared().registry, sock)?;
        let h = st
            .ep
            .create_listen_socket(local, Config::new())
            .map_err(|e| SocketError::Io(std::io::Error::other(e.to_string())))?;
        st.listen.insert(h, ListenEntry { local, config: Config::new(), hidden: true });
        st.loop_listener = Some(h);
        Ok(h)
    }
}
