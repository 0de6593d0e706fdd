//! The state behind a [`Sockets`](crate::Sockets) handle and the pieces of the drive loop that
//! both the IO thread and callers' threads run.
//!
//! # Locks
//!
//! - `Shared::state` guards the core [`Endpoint`] and everything the driver keeps beside it.
//!   API calls hold it for one core call (plus, when they transmit, polling the core's
//!   datagrams); the IO thread holds it once per pass, for its non-blocking reads, the core's
//!   work on them, timers and polling. Nobody holds it across a system call that waits.
//! - `Shared::tx` serialises transmission so datagrams leave in the order the core produced
//!   them. Whoever holds it polls the core (under `state`) into a batch, drops `state`, and
//!   sends the batch with GSO. Lock order: `tx` before `state`, never the reverse. A thread
//!   that finds `tx` taken sets `tx_wanted`; the holder makes another pass before it leaves.
//!
//! # Waking the IO thread
//!
//! The IO thread sleeps until `State::io_wake_at`. A command that makes the core need it more
//! than [`TIMER_SLACK`] sooner wakes it through the mio waker ([`State::wake_if_needed`]);
//! anything else costs no system call. So timers, Nagle-delayed and paced datagrams may leave
//! up to the slack late (the slack the core's pacer budgets for); `NO_NAGLE` sends, flushes,
//! accepts and closes go out on the caller's thread and never wait for it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lanewire_core::{
    Config, ConnectionHandle, ConnectionState, EndReason, Endpoint, Event, Instant,
    ListenSocketHandle, LocalId, MAX_DATAGRAM,
};

use crate::types::{Message, StatusChanged};
use crate::udp::{MAX_GSO_BYTES, UdpSock};

/// The mio token of the waker; socket tokens are their `LocalId`s.
pub(crate) const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

/// How late a timer may fire rather than wake the IO thread for it (mio's epoll timeouts have
/// millisecond resolution anyway).
pub(crate) const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Datagrams polled from the core per lock: 128 full packets (~166 KB) are a few GSO sends,
/// and at 1-2 µs of core work each the lock is held for a few hundred microseconds at most.
const TX_BATCH: usize = 128;

/// Rounds of in-memory pipe delivery per transmit call. Each round delivers what the last one
/// produced; a handshake needs four, a data exchange settles in two (acks elicit nothing).
const MAX_PIPE_ROUNDS: usize = 64;

/// In-memory socket pairs talk over these addresses (the IPv6 discard-only prefix, RFC 6666,
/// which no real peer can have): the hidden listener is `[100::1]:1`, clients `[100::2]:1`.
pub(crate) const PIPE_LISTENER_ADDR: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 1), 1, 0, 0));
/// See [`PIPE_LISTENER_ADDR`].
pub(crate) const PIPE_CLIENT_ADDR: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 2), 1, 0, 0));

/// Everything shared by the handles and the IO thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled when messages or events arrive (only while `State::waiters > 0`).
    pub(crate) cond: Condvar,
    pub(crate) tx: Mutex<Tx>,
    /// Someone wants a transmit pass while another thread holds `tx`.
    pub(crate) tx_wanted: AtomicBool,
    /// A send hit a full socket buffer; the IO thread retries when the socket is writable.
    pub(crate) tx_blocked: AtomicBool,
    pub(crate) waker: mio::Waker,
    pub(crate) registry: mio::Registry,
    /// Datagrams the OS refused (other than "try again"): dropped, recovered by the protocol.
    pub(crate) send_errors: AtomicU64,
}

impl Shared {
    pub(crate) fn new(state: State, waker: mio::Waker, registry: mio::Registry) -> Shared {
        Shared {
            state: Mutex::new(state),
            cond: Condvar::new(),
            tx: Mutex::new(Tx::new()),
            tx_wanted: AtomicBool::new(false),
            tx_blocked: AtomicBool::new(false),
            waker,
            registry,
            send_errors: AtomicU64::new(0),
        }
    }

    /// Locks the state. A panic in another thread while it held the lock leaves the core in
    /// a consistent state (the core never panics mid-update on network input), so poisoning
    /// is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends whatever the core has to send, on this thread, unless another thread is already
    /// doing so (then that thread picks it up: returns false). `from_io`: called by the IO
    /// thread, which recomputes its own sleep afterwards.
    pub(crate) fn transmit(&self, from_io: bool) -> bool {
        self.tx_wanted.store(true, Ordering::SeqCst);
        while self.tx_wanted.load(Ordering::SeqCst) {
            let Some(mut tx) = self.try_tx() else { return false };
            self.tx_wanted.store(false, Ordering::SeqCst);
            tx.run(self, from_io);
        }
        true
    }

    /// The transmit lock, if no other thread holds it.
    pub(crate) fn try_tx(&self) -> Option<MutexGuard<'_, Tx>> {
        match self.tx.try_lock() {
            Ok(tx) => Some(tx),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Runs an API command on the locked state; with `transmit`, also sends what the core
    /// then has to send, on this thread, polling it in the same critical section when the
    /// transmit lock is free (one lock round instead of two on the latency path).
    pub(crate) fn command<R>(&self, transmit: bool, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let mut tx = if transmit { self.try_tx() } else { None };
        if let Some(t) = &mut tx
            && !t.is_idle()
        {
            t.flush_or_block(self);
        }
        let mut st = self.lock();
        let now = st.now();
        let r = f(&mut st, now);
        let (more, delivered) = match &mut tx {
            Some(t) if t.is_idle() => t.fill(&mut st, now),
            _ => (false, false),
        };
        let events = st.collect_events(now);
        // Without the transmit lock, whoever holds it sends our datagrams (and reschedules
        // the IO thread); waking the IO thread for them now would only race it.
        if !more && (tx.is_some() || !transmit) {
            st.wake_if_needed(&self.waker);
        }
        self.unlock_and_notify(st, events || delivered);
        match tx {
            Some(mut t) => {
                if t.flush_or_block(self) && more {
                    t.run(self, false);
                }
                drop(t);
                if self.tx_wanted.load(Ordering::SeqCst) {
                    self.transmit(false);
                }
            }
            None if transmit => {
                self.transmit(false);
            }
            None => {}
        }
        r
    }

    /// Wakes waiters in `receive_timeout` / `wait_event` (call after releasing the lock when
    /// possible, so the woken thread does not find it held).
    pub(crate) fn notify(&self, st: &State) {
        if st.waiters > 0 {
            self.cond.notify_all();
        }
    }

    /// Releases the lock, then wakes waiters if `wake` and any are waiting.
    pub(crate) fn unlock_and_notify(&self, st: MutexGuard<'_, State>, wake: bool) {
        let any = wake && st.waiters > 0;
        drop(st);
        if any {
            self.cond.notify_all();
        }
    }
}

/// A listen socket the driver knows about.
#[derive(Debug)]
pub(crate) struct ListenEntry {
    pub(crate) local: LocalId,
    pub(crate) config: Config,
    /// Internal (socket pairs): not closable by the application, incoming connections are
    /// matched to a pair being set up and otherwise refused.
    pub(crate) hidden: bool,
}

/// A socket pair being set up: the incoming connection from `remote` on `listener` is its
/// server side.
#[derive(Debug)]
pub(crate) struct PairExpect {
    pub(crate) listener: ListenSocketHandle,
    pub(crate) remote: SocketAddr,
    pub(crate) server: Option<ConnectionHandle>,
}

/// Where a datagram the core emitted goes.
enum Route {
    Socket(Arc<UdpSock>),
    Pipe(LocalId, SocketAddr),
    Nowhere,
}

/// The endpoint and the driver's bookkeeping.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) ep: Endpoint<SocketAddr>,
    epoch: std::time::Instant,
    last: Instant,
    /// UDP sockets by `LocalId` (`None`: closed, or an in-memory pipe end).
    pub(crate) sockets: Vec<Option<Arc<UdpSock>>>,
    pub(crate) client_v4: Option<LocalId>,
    pub(crate) client_v6: Option<LocalId>,
    pub(crate) listen: HashMap<ListenSocketHandle, ListenEntry>,
    pub(crate) events: VecDeque<StatusChanged>,
    /// When the IO thread will next wake by itself.
    pub(crate) io_wake_at: Instant,
    pub(crate) shutdown: bool,
    /// Threads blocked in a `*_timeout` call.
    pub(crate) waiters: usize,
    /// In-memory pipe: (listener end, client end), created with the first in-memory pair.
    pub(crate) pipe: Option<(LocalId, LocalId)>,
    pub(crate) pipe_listener: Option<ListenSocketHandle>,
    /// Datagrams in flight on the pipe: (destination end, apparent source, bytes).
    pipe_queue: VecDeque<(LocalId, SocketAddr, Vec<u8>)>,
    /// Hidden loopback listener for `socket_pair(true)`.
    pub(crate) loop_listener: Option<ListenSocketHandle>,
    /// Connections whose events the application does not see (pair set-up in progress).
    pub(crate) hidden: HashSet<ConnectionHandle>,
    pub(crate) pair_expect: Vec<PairExpect>,
    /// Scratch for core receives.
    pub(crate) scratch: Vec<lanewire_core::Message>,
    /// Datagrams the core emitted for a socket that is gone (closed listen socket).
    pub(crate) no_socket: u64,
    /// WebRTC peer connections (feature `webrtc`): routes for their synthetic addresses.
    #[cfg(feature = "webrtc")]
    pub(crate) p2p: crate::p2p::P2pState,
}

impl State {
    pub(crate) fn new(ep: Endpoint<SocketAddr>) -> State {
        State {
            ep,
            epoch: std::time::Instant::now(),
            last: Instant::ZERO,
            sockets: Vec::new(),
            client_v4: None,
            client_v6: None,
            listen: HashMap::new(),
            events: VecDeque::new(),
            // The IO thread starts asleep with no timeout.
            io_wake_at: Instant::FAR_FUTURE,
            shutdown: false,
            waiters: 0,
            pipe: None,
            pipe_listener: None,
            pipe_queue: VecDeque::new(),
            loop_listener: None,
            hidden: HashSet::new(),
            pair_expect: Vec::new(),
            scratch: Vec::new(),
            no_socket: 0,
            #[cfg(feature = "webrtc")]
            p2p: Default::default(),
        }
    }

    /// The core's time now. Read under the lock and clamped, so `now` never goes backwards
    /// even when two threads race to the lock.
    pub(crate) fn now(&mut self) -> Instant {
        let t = Instant::from_micros(self.epoch.elapsed().as_micros() as u64);
        if t > self.last {
            self.last = t;
        }
        self.last
    }

    /// Converts core messages in `scratch` into `out`.
    pub(crate) fn convert_scratch(&mut self, out: &mut Vec<Message>) {
        let epoch = self.epoch;
        out.extend(self.scratch.drain(..).map(|m| Message {
            conn: m.conn,
            user_data: m.user_data,
            number: m.number,
            lane: m.lane,
            flags: if m.reliable {
                lanewire_core::SendFlags::RELIABLE
            } else {
                lanewire_core::SendFlags::UNRELIABLE
            },
            received_at: epoch + Duration::from_micros(m.received_at.as_micros()),
            data: m.data,
        }));
    }

    /// Adds a socket at a fresh `LocalId`.
    pub(crate) fn add_socket(
        &mut self,
        registry: &mio::Registry,
        sock: UdpSock,
    ) -> io::Result<LocalId> {
        let id = self.sockets.len();
        sock.register(registry, mio::Token(id), false, true)?;
        self.sockets.push(Some(Arc::new(sock)));
        Ok(LocalId(id as u32))
    }

    /// A fresh `LocalId` with no socket (an in-memory pipe end).
    pub(crate) fn add_pipe_end(&mut self) -> LocalId {
        self.sockets.push(None);
        LocalId(self.sockets.len() as u32 - 1)
    }

    /// Removes (and deregisters) the socket at `local`. The IO thread may hold a clone for a
    /// moment; the socket closes when the last clone goes.
    pub(crate) fn remove_socket(&mut self, registry: &mio::Registry, local: LocalId) {
        if let Some(slot) = self.sockets.get_mut(local.0 as usize)
            && let Some(sock) = slot.take()
        {
            sock.deregister(registry);
        }
    }

    fn route(&self, local: LocalId) -> Route {
        if let Some((listener, client)) = self.pipe {
            if local == client {
                return Route::Pipe(listener, PIPE_CLIENT_ADDR);
            }
            if local == listener {
                return Route::Pipe(client, PIPE_LISTENER_ADDR);
            }
        }
        match self.sockets.get(local.0 as usize) {
            Some(Some(s)) => Route::Socket(s.clone()),
            _ => Route::Nowhere,
        }
    }

    fn deliver_pipe(&mut self, now: Instant) {
        let n = self.pipe_queue.len();
        for _ in 0..n {
            let Some((local, from, mut data)) = self.pipe_queue.pop_front() else { break };
            self.ep.handle_datagram(now, local, from, &mut data);
        }
    }

    /// The earliest time the IO thread must act.
    pub(crate) fn next_wake(&mut self) -> Instant {
        let t = self.ep.poll_timeout().unwrap_or(Instant::FAR_FUTURE);
        if self.pipe_queue.is_empty() { t } else { t.min(self.last) }
    }

    /// After a command: wakes the IO thread if the core now needs it earlier than it planned
    /// to wake, by more than the slack. Work due at once waits for the slack too when the IO
    /// thread wakes within it anyway: sends that must not wait (`NO_NAGLE`, flush, close) go
    /// out on the caller's thread, and for the rest (Nagle, pacing) this turns one wake per
    /// packet of a flood into one per slack interval.
    pub(crate) fn wake_if_needed(&mut self, waker: &mio::Waker) {
        let t = self.next_wake();
        if t + TIMER_SLACK < self.io_wake_at {
            self.io_wake_at = t;
            let _ = waker.wake();
        }
    }

    /// Moves core events to the application's queue, handling the internal ones (socket pair
    /// set-up). Returns true if anything happened.
    pub(crate) fn collect_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(Event::StatusChanged { conn, old, info }) = self.ep.poll_event() {
            any = true;
            if old == ConnectionState::None
                && info.state == ConnectionState::Connecting
                && let Some(ls) = info.listen_socket
                && self.listen.get(&ls).is_some_and(|l| l.hidden)
            {
                let expect = self
                    .pair_expect
                    .iter_mut()
                    .find(|p| p.listener == ls && p.server.is_none() && p.remote == info.remote);
                self.hidden.insert(conn);
                match expect {
                    Some(p) => {
                        p.server = Some(conn);
                        let _ = self.ep.accept(now, conn);
                    }
                    None => {
                        // A stranger on an internal listener.
                        let _ = self.ep.close(now, conn, EndReason::APP_GENERIC, "Refused", false);
                    }
                }
                continue;
            }
            if self.hidden.contains(&conn) {
                continue;
            }
            #[cfg(feature = "webrtc")]
            let info = crate::p2p::on_event(self, conn, info);
            self.events.push_back(StatusChanged { conn, old, info });
        }
        any
    }
}

/// One transmitted datagram in the batch arena.
#[derive(Debug)]
struct TxEntry {
    sock: Arc<UdpSock>,
    local: LocalId,
    to: SocketAddr,
    start: usize,
    len: usize,
}

/// The transmit batch: datagrams polled from the core, then sent with GSO.
#[derive(Debug)]
pub(crate) struct Tx {
    arena: Vec<u8>,
    entries: Vec<TxEntry>,
    /// `entries[..sent]` are gone (a full socket buffer stopped the rest).
    sent: usize,
    /// The socket whose full buffer stopped us, registered for writability until it drains.
    blocked_on: Option<(Arc<UdpSock>, LocalId)>,
}

impl Tx {
    fn new() -> Tx {
        Tx {
            arena: vec![0; TX_BATCH * MAX_DATAGRAM],
            entries: Vec::new(),
            sent: 0,
            blocked_on: None,
        }
    }

    /// Polls and sends until the core has nothing more or a socket buffer is full.
    pub(crate) fn run(&mut self, shared: &Shared, from_io: bool) {
        loop {
            if !self.flush_or_block(shared) {
                return;
            }
            let mut st = shared.lock();
            let now = st.now();
            let (more, delivered) = self.fill(&mut st, now);
            let events = st.collect_events(now);
            if !more && !from_io {
                st.wake_if_needed(&shared.waker);
            }
            shared.unlock_and_notify(st, events || delivered);
            if !more {
                // The core had nothing more when we asked: no need to ask again.
                self.flush_or_block(shared);
                return;
            }
        }
    }

    /// True if no datagram waits in the batch (so [`Tx::fill`] may be called).
    pub(crate) fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sends the batch; records in `shared` whether a full socket buffer stopped it.
    pub(crate) fn flush_or_block(&mut self, shared: &Shared) -> bool {
        let ok = self.flush(shared);
        shared.tx_blocked.store(!ok, Ordering::SeqCst);
        ok
    }

    /// Polls up to [`TX_BATCH`] datagrams into the arena, delivering in-memory pipe traffic
    /// as it goes. Returns (the core may have more, pipe datagrams were delivered).
    pub(crate) fn fill(&mut self, st: &mut State, now: Instant) -> (bool, bool) {
        self.entries.clear();
        self.sent = 0;
        let mut off = 0;
        let mut rounds = 0;
        let mut delivered = false;
        loop {
            if self.entries.len() == TX_BATCH {
                return (true, delivered);
            }
            let buf = &mut self.arena[off..off + MAX_DATAGRAM];
            match st.ep.poll_transmit(now, buf) {
                #[cfg(feature = "webrtc")]
                Some(t) if crate::p2p::is_p2p_local(t.local) => {
                    st.p2p.transmit(now, t.to, &buf[..t.len]);
                }
                Some(t) => match st.route(t.local) {
                    Route::Socket(sock) => {
                        let e = TxEntry { sock, local: t.local, to: t.to, start: off, len: t.len };
                        self.entries.push(e);
                        off += t.len;
                    }
                    Route::Pipe(local, from) => {
                        st.pipe_queue.push_back((local, from, buf[..t.len].to_vec()));
                    }
                    Route::Nowhere => st.no_socket += 1,
                },
                None => {
                    if st.shutdown {
                        // Shutting down: the pipe's two ends are going away together.
                        st.pipe_queue.clear();
                    }
                    if st.pipe_queue.is_empty() || rounds == MAX_PIPE_ROUNDS {
                        return (!st.pipe_queue.is_empty(), delivered);
                    }
                    rounds += 1;
                    delivered = true;
                    st.deliver_pipe(now);
                }
            }
        }
    }

    /// Sends the batch, grouping runs of equal-sized datagrams to one destination into GSO
    /// sends. Returns false if a socket buffer is full (the rest stays for later).
    fn flush(&mut self, shared: &Shared) -> bool {
        let n = self.entries.len();
        while self.sent < n {
            let first = &self.entries[self.sent];
            let seg = first.len;
            let max = first.sock.max_segments();
            let mut j = self.sent + 1;
            let mut total = seg;
            while j < n
                && j - self.sent < max
                && self.entries[j - 1].len == seg
                && self.entries[j].len <= seg
                && self.entries[j].to == first.to
                && Arc::ptr_eq(&self.entries[j].sock, &first.sock)
                && total + self.entries[j].len <= MAX_GSO_BYTES
            {
                total += self.entries[j].len;
                j += 1;
            }
            let contents = &self.arena[first.start..first.start + total];
            let segment = (j - self.sent > 1).then_some(seg);
            match first.sock.send(first.to, contents, segment) {
                Ok(()) => self.sent = j,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.blocked_on.is_none() {
                        let token = mio::Token(first.local.0 as usize);
                        // If this fails the IO thread's 1 ms fallback retries anyway.
                        let _ = first.sock.register(&shared.registry, token, true, false);
                        self.blocked_on = Some((first.sock.clone(), first.local));
                    }
                    return false;
                }
                Err(_) => {
                    // Unreachable network, refused by a firewall...: UDP may lose datagrams
                    // and the protocol recovers; count and move on.
                    shared.send_errors.fetch_add((j - self.sent) as u64, Ordering::Relaxed);
                    self.sent = j;
                }
            }
        }
        self.entries.clear();
        self.sent = 0;
        if let Some((sock, local)) = self.blocked_on.take() {
            let _ = sock.register(&shared.registry, mio::Token(local.0 as usize), false, false);
        }
        true
    }
}
