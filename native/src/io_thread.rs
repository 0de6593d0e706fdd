//! The IO thread: the core's drive loop over real sockets.
//!
//! Each pass: wait for readiness (or the core's next timeout, or a wake from an API call);
//! then, in one critical section, read every readable socket in batches and hand them to the
//! core, run due timers, poll the datagrams the core wants sent and compute the next wake-up;
//! then, with the lock released, wake waiting application threads and send the batch. One
//! lock round per pass keeps the application threads that were just woken from finding the
//! lock held. It never spins: with nothing readable and nothing due it sleeps in `epoll_wait`
//! (or the platform's equivalent) until the core's next timeout, or forever when it has none.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lanewire_core::{Instant, LocalId};

use crate::state::{Shared, State, TIMER_SLACK, WAKER_TOKEN};
use crate::udp::RecvBuffers;

/// Receive batches per readable socket per pass before timers and transmits get a turn. With
/// GRO a batch is up to 512 datagrams, without it 32.
const RECV_ROUNDS: usize = 8;

/// After this many consecutive passes that asked to run again at once without receiving
/// anything, the thread sleeps a millisecond: a guard against a due-now timeout that makes no
/// progress (a core bug; a spinning IO thread would hide it as 100 % CPU).
const MAX_IDLE_SPINS: u32 = 1000;

/// Runs until the state says shut down.
pub(crate) fn run(shared: Arc<Shared>, mut poll: mio::Poll) {
    let mut events = mio::Events::with_capacity(256);
    let mut readable: Vec<usize> = Vec::new();
    let mut bufs: Option<RecvBuffers> = None;
    let mut timeout: Option<Duration> = None;
    let mut spins = 0u32;
    loop {
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
            // epoll itself failed: nothing sensible is left to do but stop driving; API
            // calls still work and report connections timing out.
            break;
        }
        for ev in events.iter() {
            if ev.token() != WAKER_TOKEN && ev.is_readable() && !readable.contains(&ev.token().0) {
                readable.push(ev.token().0);
            }
        }
        // The transmit lock first (lock order), when free, so this pass can poll the core's
        // datagrams in the same critical section as it receives. A batch a full socket buffer
        // stopped is retried first (writability is what woke us, or the 1 ms fallback).
        let mut tx = shared.try_tx();
        if let Some(t) = &mut tx
            && !t.is_idle()
        {
            t.flush_or_block(&shared);
        }
        let mut st = shared.lock();
        let now = st.now();
        let received = receive(&mut st, now, &mut readable, &mut bufs);
        if st.ep.poll_timeout().is_some_and(|t| t <= now) {
            st.ep.handle_timeout(now);
        }
        let (more, delivered) = match &mut tx {
            Some(t) if t.is_idle() => t.fill(&mut st, now),
            _ => (false, false),
        };
        let events_out = st.collect_events(now);
        let mut next = st.next_wake();
        if next <= now && (tx.is_none() || more) {
            // Another thread holds the transmit lock and finishes the work (waking us if the
            // core then needs us sooner), or we continue below.
            next = now + TIMER_SLACK;
        }
        st.io_wake_at = next;
        let shutdown = st.shutdown;
        let wake = (events_out || delivered || received > 0) && st.waiters > 0;
        drop(st);
        match tx {
            Some(mut t) => {
                // Send before waking the application: a woken thread that replies at once
                // finds the transmit lock free and sends its reply itself.
                let sent = t.flush_or_block(&shared);
                if !(sent && more) {
                    drop(t);
                    if wake {
                        shared.cond.notify_all();
                    }
                } else {
                    if wake {
                        shared.cond.notify_all();
                    }
                    t.run(&shared, true);
                    drop(t);
                }
                if shared.tx_wanted.load(Ordering::SeqCst) {
                    shared.transmit(true);
                }
            }
            None => {
                if wake {
                    shared.cond.notify_all();
                }
                // Ask the holder for another pass (it checks when it lets go), or do it
                // ourselves if it already has.
                shared.transmit(true);
            }
        }
        if shutdown {
            break;
        }
        let blocked = shared.tx_blocked.load(Ordering::SeqCst);
        timeout = if !readable.is_empty() || (next <= now && !blocked) {
            spins = if received == 0 { spins + 1 } else { 0 };
            if spins > MAX_IDLE_SPINS {
                spins = 0;
                Some(Duration::from_millis(1))
            } else {
                Some(Duration::ZERO)
            }
        } else if blocked {
            // Nothing can go out until the socket drains: writability wakes us, and the
            // millisecond is a fallback (timers run at that granularity meanwhile).
            Some(Duration::from_millis(1))
        } else if next >= Instant::FAR_FUTURE {
            None
        } else {
            spins = 0;
            Some(next - now)
        };
    }
}

/// Reads readable sockets into the core; drops from `readable` those that ran dry. Returns
/// the number of datagrams handed to the core. Runs under the state lock: the reads do not
/// block (the sockets are non-blocking).
fn receive(
    st: &mut State,
    now: Instant,
    readable: &mut Vec<usize>,
    bufs: &mut Option<RecvBuffers>,
) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < readable.len() {
        let token = readable[i];
        let Some(sock) = st.sockets.get(token).cloned().flatten() else {
            readable.swap_remove(i);
            continue;
        };
        let shape = sock.recv_shape();
        let b = match bufs {
            Some(b) if b.fits(shape) => b,
            _ => bufs.insert(RecvBuffers::new(shape)),
        };
        let mut dry = false;
        for _ in 0..RECV_ROUNDS {
            match sock.recv_batch(b) {
                Ok(n) => {
                    let local = LocalId(token as u32);
                    total +=
                        b.for_each(n, |from, data| st.ep.handle_datagram(now, local, from, data));
                    if n < b.slots() {
                        // A short batch emptied the queue; a datagram arriving after it
                        // raises a new edge, so no extra read to see "would block".
                        dry = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    dry = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // ICMP errors reported on the socket (port unreachable...): the datagram
                    // they answer is lost; the protocol recovers. Keep reading.
                }
            }
        }
        if dry {
            readable.swap_remove(i);
        } else {
            i += 1;
        }
    }
    total
}
