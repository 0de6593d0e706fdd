//! Nagle and `flush`, on the simulator, in virtual time: small messages sent within the Nagle
//! time share packets, a lone one is held for `NagleTime` and then goes out by itself (the
//! timer, with no further call), `NO_NAGLE` and `NagleTime` = 0 send each message at once,
//! and `flush` sends what is held at once. Every figure (rate, Nagle time, latency) is set
//! here, so none depends on the defaults.

mod common;

use core::time::Duration;

use common::{check_message, global_config, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConfigKey, Instant, Message, SendFlags};

/// The fixed send rate (SendRateMin = SendRateMax), bytes per second: a small packet takes
/// well under [`SPACING`] to pace out, so pacing never holds a message back.
const RATE: i32 = 1_000_000;
/// One-way latency of the simulated link, each way.
const LATENCY: Duration = Duration::from_millis(10);
/// Messages in a burst, and their size: all of them fit one packet.
const BURST: usize = 40;
const SMALL: usize = 20;
/// Time between two sends of a burst: the whole burst takes 3.9 ms, within [`NAGLE_US`].
const SPACING: Duration = Duration::from_micros(100);
/// The Nagle time of the coalescing tests, microseconds (the reference's default).
const NAGLE_US: i32 = 5_000;

/// A connected pair over a 10 ms link with a fixed rate and `NagleTime` = `nagle_us`, idle
/// (the handshake's packets all delivered), capturing datagrams from now on.
fn pair(seed: u64, nagle_us: i32) -> Pair {
    let mut global = global_config(RATE);
    global.set_i32(ConfigKey::NagleTime, nagle_us).unwrap();
    let link = LinkConfig { latency: LATENCY, ..LinkConfig::ideal() };
    let mut p = Pair::new(seed, link, global, Config::new(), Config::new());
    assert!(p.connect(Duration::from_secs(5)), "did not connect");
    p.world.run_for(Duration::from_millis(200));
    p.world.capture = true;
    p
}

/// Datagrams the client sent since capture started.
fn client_datagrams(p: &Pair) -> usize {
    p.world.captured.iter().filter(|(from, _, _)| *from == p.client).count()
}

/// Everything the server has received so far, checked: intact, and in the order sent.
fn received(p: &mut Pair) -> Vec<Message> {
    let sc = p.server_conn.expect("accepted");
    let mut out = Vec::new();
    p.world.node(p.server).receive(sc, usize::MAX, &mut out).expect("valid handle");
    for (i, m) in out.iter().enumerate() {
        assert_eq!(check_message(&m.data).1, i as u64, "message out of order");
    }
    out
}

/// Sends [`BURST`] small messages with `flags`, [`SPACING`] apart; returns their send times.
fn send_burst(p: &mut Pair, flags: SendFlags) -> Vec<Instant> {
    let (c, cc) = (p.client, p.client_conn);
    let mut sent_at = Vec::new();
    for i in 0..BURST {
        let now = p.world.now;
        let m = make_message(flags.is_reliable(), i as u64, SMALL);
        p.world.node(c).send(now, cc, &m, flags).expect("send");
        sent_at.push(now);
        p.world.run_for(SPACING);
    }
    sent_at
}

both! {
    fn nagle_coalesces_small_messages_into_few_packets() {
        for flags in [SendFlags::RELIABLE, SendFlags::UNRELIABLE] {
            let mut p = pair(71, NAGLE_US);
            let sent_at = send_burst(&mut p, flags);
            p.world.run_for(Duration::from_millis(100));
            let got = received(&mut p);
            assert_eq!(got.len(), BURST, "{flags:?}: every message arrives (no loss)");
            let packets = client_datagrams(&p);
            println!("{flags:?}: {BURST} messages in {packets} packets");
            assert!(
                packets * 8 <= BURST,
                "{flags:?}: {BURST} small messages within the Nagle time took {packets} packets"
            );
            // The first message waited for the others: it left about NagleTime after it was
            // queued, not at once.
            let waited = got[0].received_at - sent_at[0];
            let nagle = Duration::from_micros(NAGLE_US as u64);
            assert!(waited >= nagle + LATENCY, "{flags:?}: first message arrived after {waited:?}");
        }
    }
}

/// Each message of a burst sent with `flags` under `NagleTime` = `nagle_us` goes out at once,
/// in a packet of its own.
fn assert_each_sent_at_once(seed: u64, nagle_us: i32, flags: SendFlags) {
    let mut p = pair(seed, nagle_us);
    let sent_at = send_burst(&mut p, flags);
    p.world.run_for(Duration::from_millis(100));
    let got = received(&mut p);
    assert_eq!(got.len(), BURST, "{flags:?}: every message arrives (no loss)");
    let packets = client_datagrams(&p);
    assert!(
        packets >= BURST,
        "{flags:?}, NagleTime {nagle_us}: {BURST} messages went in only {packets} packets"
    );
    for (m, sent) in got.iter().zip(&sent_at) {
        let took = m.received_at - *sent;
        assert!(
            took <= LATENCY + Duration::from_micros(500),
            "{flags:?}, NagleTime {nagle_us}: message {} took {took:?} over a {LATENCY:?} link",
            m.number
        );
    }
}

both! {
    fn no_nagle_sends_each_message_at_once() {
        assert_each_sent_at_once(72, NAGLE_US, SendFlags::RELIABLE_NO_NAGLE);
        assert_each_sent_at_once(73, NAGLE_US, SendFlags::UNRELIABLE_NO_NAGLE);
    }
}

both! {
    fn nagle_time_zero_sends_each_message_at_once() {
        assert_each_sent_at_once(74, 0, SendFlags::RELIABLE);
        assert_each_sent_at_once(75, 0, SendFlags::UNRELIABLE);
    }
}

both! {
    fn nagle_timer_sends_a_lone_message_after_nagle_time() {
        // Two Nagle times, so the hold follows the config value, not a constant.
        for (seed, nagle_us) in [(76, 2_000), (77, 15_000)] {
            let nagle = Duration::from_micros(nagle_us as u64);
            let mut p = pair(seed, nagle_us);
            let (c, cc) = (p.client, p.client_conn);
            for (i, flags) in [SendFlags::RELIABLE, SendFlags::UNRELIABLE].into_iter().enumerate() {
                let sent = p.world.now;
                let m = make_message(flags.is_reliable(), i as u64, SMALL);
                p.world.node(c).send(sent, cc, &m, flags).expect("send");
                // From here on the client's application calls nothing: only its timer can send.
                let sc = p.server_conn.unwrap();
                let s = p.server;
                let mut got = Vec::new();
                let arrived = p.world.run_until(Duration::from_secs(1), |w| {
                    w.node(s).receive(sc, usize::MAX, &mut got).unwrap();
                    !got.is_empty()
                });
                assert!(arrived, "{flags:?}: a lone message held by Nagle never went out");
                let took = got[0].received_at - sent;
                println!("{flags:?}, NagleTime {nagle:?}: arrived after {took:?}");
                assert!(
                    took >= nagle + LATENCY && took <= nagle + LATENCY + Duration::from_millis(1),
                    "{flags:?}, NagleTime {nagle:?}: a lone message arrived after {took:?} over \
                     a {LATENCY:?} link"
                );
                p.world.run_for(Duration::from_millis(100));
            }
        }
    }
}

both! {
    fn flush_sends_held_messages_at_once() {
        let nagle_us = 20_000; // the largest Nagle time the config allows
        let mut p = pair(78, nagle_us);
        let (c, cc) = (p.client, p.client_conn);
        let queued = p.world.now;
        for i in 0..6u64 {
            let flags = if i % 2 == 0 { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            let m = make_message(flags.is_reliable(), i, SMALL);
            p.world.node(c).send(queued, cc, &m, flags).expect("send");
        }
        p.world.run_for(Duration::from_millis(2));
        assert_eq!(client_datagrams(&p), 0, "Nagle holds the messages until the flush");
        let flushed = p.world.now;
        p.world.node(c).flush(flushed, cc).expect("connected");
        p.world.run_for(Duration::from_millis(100));
        let sc = p.server_conn.unwrap();
        let mut got = Vec::new();
        p.world.node(p.server).receive(sc, usize::MAX, &mut got).unwrap();
        assert_eq!(got.len(), 6, "every flushed message arrives");
        for m in &got {
            let took = m.received_at - flushed;
            assert!(
                took <= LATENCY + Duration::from_micros(500),
                "message {} arrived {took:?} after the flush over a {LATENCY:?} link (Nagle \
                 time {nagle_us} us)",
                m.number
            );
        }
    }
}
