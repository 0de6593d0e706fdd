//! [`Sockets`]: the application's handle. Every call locks the shared state for one core
//! call; sends that ask for no Nagle delay, flushes, accepts and closes also transmit on the
//! caller's thread, so their datagrams leave before the call returns.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use lanewire_core::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, EndReason, Endpoint, EndpointStats,
    HandleError, Instant, ListenSocketHandle, LocalId, OutgoingMessage, PollGroupHandle,
    QuickStatus, SendError, SendFlags,
};

use lanewire_core::config::ConfigError;

use crate::state::{ListenEntry, Shared, State, WAKER_TOKEN};
use crate::types::{ConnectionInfo, Message, MessageNumber, SocketError, StatusChanged};
use crate::udp::{UdpSock, canonical};

/// A Lanewire instance: one protocol endpoint and one IO thread that owns its UDP sockets and
/// timers. Cheap to clone (a reference count) and usable from any thread; the IO thread stops
/// when the last clone is dropped, after telling every connected peer (no linger).
///
/// The calls follow the reference's `ISteamNetworkingSockets`: listen, connect, accept, send,
/// receive (per connection or per poll group), close, status, config values, and status
/// events delivered by [`Sockets::run_callbacks`] or drained with [`Sockets::events`].
#[derive(Clone, Debug)]
pub struct Sockets {
    pub(crate) inner: Arc<Inner>,
}

/// Owned by the `Sockets` clones only (the IO thread holds `shared`), so dropping the last
/// clone drops this and stops the thread.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Serialises loopback socket pair set-ups (each waits for the IO thread).
    pub(crate) pair_setup: Mutex<()>,
    /// The WebRTC runtime, started by `connect_signaling` (feature `webrtc`). Dropped after
    /// `Drop::drop` below has handed the last close notices to the transmit path.
    #[cfg(feature = "webrtc")]
    pub(crate) p2p: Mutex<Option<Arc<crate::p2p::Hub>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            let now = st.now();
            for c in st.ep.connections() {
                let _ = st.ep.close(now, c, EndReason::APP_GENERIC, "Sockets shut down", false);
            }
        }
        self.shared.transmit(false);
        let _ = self.shared.waker.wake();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// Counters of one [`Sockets`] instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketsStats {
    /// What the protocol endpoint received, refused and dropped.
    pub endpoint: EndpointStats,
    /// Live connections, including ones closed by the application that are still finishing
    /// (and the internal halves of socket pairs).
    pub connections: usize,
    /// Bytes held in connection buffers.
    pub buffered_bytes: usize,
    /// Datagrams the operating system refused to send (dropped; the protocol recovers).
    pub send_errors: u64,
}

impl Sockets {
    /// A new instance with default global config values and its IO thread.
    pub fn new() -> io::Result<Sockets> {
        Sockets::with_config(Config::new())
    }

    /// A new instance with global config values `global` (send rates, fake loss and lag...;
    /// see [`ConfigKey`]), set before any connection exists.
    pub fn with_config(global: Config) -> io::Result<Sockets> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(io::Error::other)?;
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let state = State::new(Endpoint::new(global, seed));
        let shared = Arc::new(Shared::new(state, waker, registry));
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lanewire-io".into())
            .spawn(move || crate::io_thread::run(thread_shared, poll))?;
        Ok(Sockets {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
                pair_setup: Mutex::new(()),
                #[cfg(feature = "webrtc")]
                p2p: Mutex::new(None),
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Runs `f` on the locked state with the current time, then wakes the IO thread if the
    /// core now needs it sooner.
    fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        self.shared().command(false, f)
    }

    /// Like [`Sockets::with`], then transmits on this thread.
    fn with_transmit<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        self.shared().command(true, f)
    }

    // ------------------------------------------------------------------ listen / connect

    /// Listens for connections on UDP address `addr`, with connection config values `config`
    /// inherited by the connections it accepts.
    ///
    /// `0.0.0.0:port` takes IPv4; `[::]:port` is dual-stack (IPv4 clients appear with their
    /// IPv4 address, not as `::ffff:a.b.c.d`); a specific IPv6 address takes IPv6 only;
    /// `[::ffff:0.0.0.0]:port` means any IPv4 address, as in the reference. Port 0 picks a free
    /// port: read it back with [`Sockets::listen_socket_address`].
    pub fn listen_ip(
        &self,
        addr: SocketAddr,
        config: Config,
    ) -> Result<ListenSocketHandle, SocketError> {
        config.check_connection_scope()?;
        let sock = UdpSock::bind(addr)?;
        let shared = self.shared();
        let mut st = shared.lock();
        let local = st.add_socket(&shared.registry, sock)?;
        match st.ep.create_listen_socket(local, config.clone()) {
            Ok(h) => {
                st.listen.insert(h, ListenEntry { local, config, hidden: false });
                Ok(h)
            }
            Err(_) => {
                // Unreachable: the LocalId is fresh and the config was checked above.
                st.remove_socket(&shared.registry, local);
                Err(SocketError::Io(io::Error::other("listen socket refused by the endpoint")))
            }
        }
    }

    /// The address a listen socket is bound to, with the port the OS chose for port 0.
    /// `[::]` for dual-stack sockets.
    pub fn listen_socket_address(&self, listen: ListenSocketHandle) -> Option<SocketAddr> {
        let st = self.shared().lock();
        let entry = st.listen.get(&listen).filter(|l| !l.hidden)?;
        st.sockets.get(entry.local.0 as usize)?.as_ref().map(|s| s.local_addr())
    }

    /// True if the listen socket is dual-stack (bound to `[::]`).
    pub fn listen_socket_is_dual_stack(&self, listen: ListenSocketHandle) -> Option<bool> {
        let st = self.shared().lock();
        let entry = st.listen.get(&listen).filter(|l| !l.hidden)?;
        st.sockets.get(entry.local.0 as usize)?.as_ref().map(|s| s.is_dual_stack())
    }

    /// Closes a listen socket and, as in the reference, every connection it accepted
    /// (without linger: their peers are told at once).
    pub fn close_listen_socket(&self, listen: ListenSocketHandle) -> Result<(), HandleError> {
        let shared = self.shared();
        let local = self.with(|st, now| {
            let entry = st.listen.get(&listen).filter(|l| !l.hidden);
            let local = entry.ok_or(HandleError::InvalidHandle)?.local;
            st.ep.close_listen_socket(now, listen)?;
            st.listen.remove(&listen);
            Ok::<_, HandleError>(local)
        })?;
        // Send the closes through the socket, then drop it.
        shared.transmit(false);
        let mut st = shared.lock();
        st.remove_socket(&shared.registry, local);
        Ok(())
    }

    /// Starts connecting to `addr` with connection config values `config`. The handle is
    /// usable at once; progress arrives as status events (`Connecting`, then `Connected` or
    /// `ProblemDetectedLocally`). Reliable messages sent before the connection is up wait
    /// for it.
    ///
    /// Outgoing connections share one local UDP socket per address family, bound to an
    /// ephemeral port on first use.
    pub fn connect_ip(
        &self,
        addr: SocketAddr,
        config: Config,
    ) -> Result<ConnectionHandle, SocketError> {
        let addr = canonical(addr);
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(SocketError::InvalidAddress(addr));
        }
        config.check_connection_scope()?;
        let shared = self.shared();
        let h = {
            let mut st = shared.lock();
            let local = self.client_socket(&mut st, addr.is_ipv4())?;
            let now = st.now();
            let h = st.ep.connect(now, local, addr, config)?;
            if st.collect_events(now) {
                shared.notify(&st);
            }
            st.wake_if_needed(&shared.waker);
            h
        };
        shared.transmit(false);
        Ok(h)
    }

    /// The shared client socket for one address family, bound on first use.
    pub(crate) fn client_socket(&self, st: &mut State, v4: bool) -> io::Result<LocalId> {
        let slot = if v4 { st.client_v4 } else { st.client_v6 };
        if let Some(l) = slot {
            return Ok(l);
        }
        // Any interface, ephemeral port; the IPv6 one takes IPv6 only.
        let sock = if v4 {
            UdpSock::bind(SocketAddr::from(([0, 0, 0, 0], 0)))?
        } else {
            UdpSock::bind_v6_only(SocketAddr::from(([0u16; 8], 0)))?
        };
        let local = st.add_socket(&self.shared().registry, sock)?;
        if v4 {
            st.client_v4 = Some(local);
        } else {
            st.client_v6 = Some(local);
        }
        Ok(local)
    }

    /// Accepts an incoming connection (announced by a `None -> Connecting` event with
    /// `listen_socket` set). Errors: `InvalidHandle`, or `InvalidState` if it is not an
    /// incoming connection waiting to be accepted.
    pub fn accept(&self, conn: ConnectionHandle) -> Result<(), HandleError> {
        self.with_transmit(|st, now| st.ep.accept(now, conn))
    }

    /// Closes a connection and invalidates its handle. `reason` is an application code
    /// (1000-2999; 0 means [`EndReason::APP_GENERIC`]) sent with `debug` to the peer. With
    /// `linger`, reliable messages still queued are delivered first. Unread received messages
    /// are discarded. Must also be called after the peer closed, to free the handle.
    pub fn close(
        &self,
        conn: ConnectionHandle,
        reason: EndReason,
        debug: &str,
        linger: bool,
    ) -> Result<(), HandleError> {
        self.with_transmit(|st, now| {
            st.hidden.remove(&conn);
            st.ep.close(now, conn, reason, debug, linger)
        })
    }

    // ------------------------------------------------------------------ sending

    /// Sends a message on lane 0 and returns its message number. With
    /// [`SendFlags::NO_NAGLE`] the datagram is sent on this thread before the call returns;
    /// otherwise it waits for the Nagle time (or a full packet) and the IO thread sends it.
    ///
    /// Errors are values, never panics: `InvalidHandle` (unknown or closed handle),
    /// `NoConnection` (the connection ended), `MessageTooBig` (over 512 KiB),
    /// `LimitExceeded` (send buffer full; try later), `Ignored` (`NO_DELAY` and not ready).
    pub fn send(
        &self,
        conn: ConnectionHandle,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<MessageNumber, SendError> {
        self.send_on_lane(conn, 0, data, flags)
    }

    /// Sends a message on a lane (see [`Sockets::configure_lanes`]).
    pub fn send_on_lane(
        &self,
        conn: ConnectionHandle,
        lane: u16,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<MessageNumber, SendError> {
        self.shared()
            .command(flags.no_nagle(), |st, now| st.ep.send_on_lane(now, conn, lane, data, flags))
    }

    /// Sends a batch under one lock. Results are in order; after the first failure on a
    /// connection, its later messages are not attempted (`None`), as the reference's
    /// `SendMessages`. Transmits on this thread if any message asked for no Nagle delay.
    pub fn send_messages(
        &self,
        msgs: &[OutgoingMessage<'_>],
    ) -> Vec<Option<Result<MessageNumber, SendError>>> {
        let now_send = msgs.iter().any(|m| m.flags.no_nagle());
        self.shared().command(now_send, |st, now| st.ep.send_messages(now, msgs))
    }

    /// Sends what waits for the Nagle timer now. `InvalidState` if not connected.
    pub fn flush(&self, conn: ConnectionHandle) -> Result<(), HandleError> {
        self.with_transmit(|st, now| st.ep.flush(now, conn))
    }

    /// Configures the connection's outgoing lanes: a priority (lower first) and a weight
    /// (share among equal priorities) per lane. The count can only grow.
    pub fn configure_lanes(
        &self,
        conn: ConnectionHandle,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), HandleError> {
        self.with(|st, _| st.ep.configure_lanes(conn, priorities, weights))
    }

    // ------------------------------------------------------------------ receiving

    /// Takes up to `max` received messages of one connection (reliable ones in order per lane).
    pub fn receive(&self, conn: ConnectionHandle, max: usize) -> Result<Vec<Message>, HandleError> {
        let mut out = Vec::new();
        self.receive_into(conn, max, &mut out)?;
        Ok(out)
    }

    /// Appends up to `max` received messages of one connection to `out`; returns how many.
    pub fn receive_into(
        &self,
        conn: ConnectionHandle,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Result<usize, HandleError> {
        let mut st = self.shared().lock();
        Self::receive_locked(&mut st, conn, max, out)
    }

    fn receive_locked(
        st: &mut State,
        conn: ConnectionHandle,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Result<usize, HandleError> {
        let mut scratch = std::mem::take(&mut st.scratch);
        let r = st.ep.receive(conn, max, &mut scratch);
        st.scratch = scratch;
        let n = r?;
        st.convert_scratch(out);
        Ok(n)
    }

    /// Like [`Sockets::receive`], but waits up to `timeout` for at least one message.
    pub fn receive_timeout(
        &self,
        conn: ConnectionHandle,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Message>, HandleError> {
        self.wait_for(timeout, |st, out| Self::receive_locked(st, conn, max, out))
    }

    /// Runs `take` under the lock until it yields something or `timeout` passes.
    fn wait_for(
        &self,
        timeout: Duration,
        mut take: impl FnMut(&mut State, &mut Vec<Message>) -> Result<usize, HandleError>,
    ) -> Result<Vec<Message>, HandleError> {
        let deadline = std::time::Instant::now() + timeout;
        let shared = self.shared();
        let mut out = Vec::new();
        let mut st = shared.lock();
        loop {
            if take(&mut st, &mut out)? > 0 {
                return Ok(out);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            st.waiters += 1;
            st = shared.cond.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
            st.waiters -= 1;
        }
    }

    // ------------------------------------------------------------------ poll groups

    /// A new, empty poll group.
    pub fn create_poll_group(&self) -> PollGroupHandle {
        self.shared().lock().ep.create_poll_group()
    }

    /// Destroys a poll group; its connections are left in no group.
    pub fn destroy_poll_group(&self, group: PollGroupHandle) -> Result<(), HandleError> {
        self.shared().lock().ep.destroy_poll_group(group)
    }

    /// Puts a connection in a poll group (`None`: in no group). Messages already waiting
    /// move with it.
    pub fn set_poll_group(
        &self,
        conn: ConnectionHandle,
        group: Option<PollGroupHandle>,
    ) -> Result<(), HandleError> {
        self.shared().lock().ep.set_poll_group(conn, group)
    }

    /// Takes up to `max` messages from all the group's connections, in about the order they
    /// arrived (per-connection order kept).
    pub fn receive_on_poll_group(
        &self,
        group: PollGroupHandle,
        max: usize,
    ) -> Result<Vec<Message>, HandleError> {
        let mut out = Vec::new();
        let mut st = self.shared().lock();
        Self::receive_group_locked(&mut st, group, max, &mut out)?;
        Ok(out)
    }

    fn receive_group_locked(
        st: &mut State,
        group: PollGroupHandle,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Result<usize, HandleError> {
        let mut scratch = std::mem::take(&mut st.scratch);
        let r = st.ep.receive_on_poll_group(group, max, &mut scratch);
        st.scratch = scratch;
        let n = r?;
        st.convert_scratch(out);
        Ok(n)
    }

    /// Like [`Sockets::receive_on_poll_group`], but waits up to `timeout` for a message.
    pub fn receive_on_poll_group_timeout(
        &self,
        group: PollGroupHandle,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Message>, HandleError> {
        self.wait_for(timeout, |st, out| Self::receive_group_locked(st, group, max, out))
    }

    // ------------------------------------------------------------------ status

    /// Everything about a connection, or `None` for an invalid or closed handle.
    pub fn connection_info(&self, conn: ConnectionHandle) -> Option<ConnectionInfo> {
        let st = self.shared().lock();
        let info = st.ep.connection_info(conn)?;
        // P2P connections: the peer's identity and route (feature `webrtc`).
        #[cfg(feature = "webrtc")]
        let info = {
            let mut info = info;
            st.p2p.patch_info(&mut info);
            info
        };
        Some(info)
    }

    /// Cheap status: ping, quality, rates, queued bytes. `None` for an invalid handle.
    pub fn quick_status(&self, conn: ConnectionHandle) -> Option<QuickStatus> {
        let mut st = self.shared().lock();
        let now = st.now();
        st.ep.quick_status(now, conn)
    }

    /// Multi-line human-readable status. `None` for an invalid handle.
    pub fn detailed_status(&self, conn: ConnectionHandle) -> Option<String> {
        let mut st = self.shared().lock();
        let now = st.now();
        st.ep.detailed_status(now, conn)
    }

    /// Sets the connection's user data (also on messages already waiting to be received).
    pub fn set_connection_user_data(
        &self,
        conn: ConnectionHandle,
        data: i64,
    ) -> Result<(), HandleError> {
        self.shared().lock().ep.set_user_data(conn, data)
    }

    /// The connection's user data (-1 when unset or the handle is invalid, as the reference).
    pub fn connection_user_data(&self, conn: ConnectionHandle) -> i64 {
        self.shared().lock().ep.user_data(conn)
    }

    /// Names the connection (shows in its description and detailed status).
    pub fn set_connection_name(
        &self,
        conn: ConnectionHandle,
        name: &str,
    ) -> Result<(), HandleError> {
        self.shared().lock().ep.set_name(conn, name)
    }

    /// The connection's name (`None` for an invalid handle).
    pub fn connection_name(&self, conn: ConnectionHandle) -> Option<String> {
        self.connection_info(conn).map(|i| i.name)
    }

    /// Counters: what the endpoint dropped and why, live connections, buffered bytes.
    pub fn stats(&self) -> SocketsStats {
        let st = self.shared().lock();
        SocketsStats {
            endpoint: st.ep.stats().clone(),
            connections: st.ep.connection_count(),
            buffered_bytes: st.ep.buffered_bytes(),
            send_errors: self.shared().send_errors.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    // ------------------------------------------------------------------ config

    /// Sets a global config value (fake loss / lag take effect at once; connection values
    /// apply to every connection that has not overridden them).
    pub fn set_global_config(&self, key: ConfigKey, value: ConfigValue) -> Result<(), ConfigError> {
        self.with(|st, _| st.ep.set_config(key, value))
    }

    /// The effective global value of `key`.
    pub fn global_config_value(&self, key: ConfigKey) -> ConfigValue {
        self.shared().lock().ep.config_value(key)
    }

    /// Sets a config value on one connection (connection-scope keys only).
    pub fn set_connection_config(
        &self,
        conn: ConnectionHandle,
        key: ConfigKey,
        value: ConfigValue,
    ) -> Result<(), ConfigError> {
        self.with(|st, _| st.ep.set_connection_config(conn, key, value))
    }

    /// A connection's effective value of `key` (`None` for an invalid handle).
    pub fn connection_config_value(
        &self,
        conn: ConnectionHandle,
        key: ConfigKey,
    ) -> Option<ConfigValue> {
        self.shared().lock().ep.connection_config_value(conn, key)
    }

    /// A listen socket's effective value of `key`: its own override, else the global value
    /// (`None` for an invalid handle). Listen-socket values are set when it is created.
    pub fn listen_socket_config_value(
        &self,
        listen: ListenSocketHandle,
        key: ConfigKey,
    ) -> Option<ConfigValue> {
        let st = self.shared().lock();
        let entry = st.listen.get(&listen).filter(|l| !l.hidden)?;
        Some(entry.config.get(key).cloned().unwrap_or_else(|| st.ep.config_value(key)))
    }

    // ------------------------------------------------------------------ events

    /// Calls `f` on this thread for each status change queued since the last call (the lock
    /// is not held while `f` runs, so `f` may call any method).
    pub fn run_callbacks(&self, mut f: impl FnMut(StatusChanged)) {
        for e in self.events() {
            f(e);
        }
    }

    /// Drains the queued status changes.
    pub fn events(&self) -> std::vec::IntoIter<StatusChanged> {
        let mut st = self.shared().lock();
        st.events.drain(..).collect::<Vec<_>>().into_iter()
    }

    /// The next status change, waiting up to `timeout` for one.
    pub fn wait_event(&self, timeout: Duration) -> Option<StatusChanged> {
        let deadline = std::time::Instant::now() + timeout;
        let shared = self.shared();
        let mut st = shared.lock();
        loop {
            if let Some(e) = st.events.pop_front() {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            st.waiters += 1;
            st = shared.cond.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
            st.waiters -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_is_a_cheap_thread_safe_handle() {
        fn assert_handle<T: Clone + Send + Sync + 'static>() {}
        assert_handle::<Sockets>();
        let s = Sockets::new().unwrap();
        let t = s.clone();
        std::thread::spawn(move || t.create_poll_group()).join().unwrap();
        assert!(s.destroy_poll_group(s.create_poll_group()).is_ok());
    }
}
