//! Helpers of the browser tests: instances that record their events, bounded waits, the
//! self-checking messages and random-message stress of `core/tests/common`, and the figures
//! (throughput against a raw data channel, connect time, ping-pong).
#![allow(dead_code, unreachable_pub, missing_docs)]

use core::fmt;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Promise, Uint8Array};
use lanewire_core::{MAX_UNRELIABLE_SIZE, Rng};
use lanewire_web::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, Lanewire, Message, Options, SendFlags,
    StatusEvent,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcDataChannelInit, RtcDataChannelState, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcSdpType, RtcSessionDescriptionInit,
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn now_ms() -> f64;
}

/// The signaling server the test harness started.
pub fn signaling_url() -> &'static str {
    option_env!("LANEWIRE_TEST_SIGNALING_URL").unwrap_or("ws://127.0.0.1:27087/ws")
}

pub async fn sleep(ms: f64) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

/// Polls `cond` every few milliseconds; panics with `what` after `timeout_ms`.
pub async fn wait_for(what: &str, timeout_ms: u32, mut cond: impl FnMut() -> bool) {
    let start = now_ms();
    while !cond() {
        assert!(
            now_ms() - start < f64::from(timeout_ms),
            "timed out after {timeout_ms} ms waiting for {what}"
        );
        sleep(2.0).await;
    }
}

pub fn unique(name: &str) -> String {
    format!("str:{name}-{:08x}", (js_sys::Math::random() * 4e9) as u64)
}

/// An instance that records its status events (with the time they came) and may accept
/// every incoming connection from inside the callback.
pub struct Node {
    pub lw: Lanewire,
    pub events: Rc<RefCell<Vec<(f64, StatusEvent)>>>,
}

impl Node {
    pub async fn new(name: &str, config: Config, auto_accept: bool) -> Node {
        let mut options = Options::new(signaling_url(), unique(name));
        options.config = config;
        options.timeout = core::time::Duration::from_secs(5);
        let lw = Lanewire::connect(options).await.expect("registers at the signaling server");
        let events: Rc<RefCell<Vec<(f64, StatusEvent)>>> = Rc::default();
        let log = events.clone();
        let me = lw.clone();
        lw.on_status(move |ev| {
            if auto_accept && ev.old == ConnectionState::None && ev.info.listen_socket.is_some() {
                me.accept(ev.conn).expect("accept in the callback");
            }
            log.borrow_mut().push((now_ms(), ev));
        });
        Node { lw, events }
    }

    pub fn state(&self, c: ConnectionHandle) -> ConnectionState {
        self.lw.connection_info(c).map_or(ConnectionState::None, |i| i.state)
    }

    /// The newest incoming connection.
    pub fn incoming(&self) -> Option<ConnectionHandle> {
        let events = self.events.borrow();
        let mut found = events
            .iter()
            .filter(|(_, e)| e.old == ConnectionState::None && e.info.listen_socket.is_some());
        found.next_back().map(|(_, e)| e.conn)
    }

    /// When `c` became connected (performance.now ms).
    pub fn connected_at(&self, c: ConnectionHandle) -> Option<f64> {
        let events = self.events.borrow();
        let e =
            events.iter().find(|(_, e)| e.conn == c && e.info.state == ConnectionState::Connected);
        e.map(|(t, _)| *t)
    }

    /// Events other than connecting and connected.
    pub fn unexpected_events(&self) -> Vec<StatusEvent> {
        let ok = [ConnectionState::Connecting, ConnectionState::Connected];
        let events = self.events.borrow();
        events.iter().filter(|(_, e)| !ok.contains(&e.info.state)).map(|(_, e)| e.clone()).collect()
    }

    pub async fn receive_n(&self, c: ConnectionHandle, n: usize, timeout_ms: u32) -> Vec<Message> {
        let got = RefCell::new(Vec::new());
        wait_for(&format!("{n} messages"), timeout_ms, || {
            let mut m = self.lw.receive(c, n - got.borrow().len()).expect("receive");
            got.borrow_mut().append(&mut m);
            got.borrow().len() == n
        })
        .await;
        got.into_inner()
    }

    pub fn shutdown(&self) {
        self.lw.shutdown();
    }
}

/// Two instances, `b` listening on port 7 and accepting in its callback, `a` connected to it.
pub async fn connected_pair(
    name: &str,
    config: Config,
) -> (Node, Node, ConnectionHandle, ConnectionHandle) {
    let a = Node::new(&format!("{name}-a"), config.clone(), false).await;
    let b = Node::new(&format!("{name}-b"), config, true).await;
    b.lw.listen_p2p(7, Config::new()).expect("listen");
    let ca = a.lw.connect_p2p(&b.lw.identity(), 7, Config::new()).expect("connect");
    wait_for("connected", 10_000, || {
        a.state(ca) == ConnectionState::Connected
            && b.incoming().is_some_and(|cb| b.state(cb) == ConnectionState::Connected)
    })
    .await;
    let cb = b.incoming().expect("accepted");
    (a, b, ca, cb)
}

// ---------------------------------------------------------------------- stress

use lanewire_core::sim::random_message;
pub use lanewire_core::sim::{check_message, make_message};

#[derive(Default, Debug)]
pub struct Side {
    pub sent_reliable: u64,
    pub sent_unreliable: u64,
    pub recv_reliable: u64,
    pub recv_unreliable: u64,
    pub last_unreliable: Option<u64>,
    pub bytes_received: u64,
}

/// Random messages both ways, checked on arrival: reliable ones exactly once and in order,
/// unreliable ones whole and never duplicated.
pub struct Stress<'a> {
    conns: [(&'a Node, ConnectionHandle); 2],
    pub sides: [Side; 2],
    rng: Rng,
}

/// Bytes each side keeps queued: enough to keep the 1 MB/s pacer busy between top-ups.
const STRESS_QUEUE: usize = 256 * 1024;

impl<'a> Stress<'a> {
    pub fn new(conns: [(&'a Node, ConnectionHandle); 2], seed: u64) -> Stress<'a> {
        Stress { conns, sides: Default::default(), rng: Rng::seeded(seed) }
    }

    pub fn top_up(&mut self, side: usize) {
        let (node, conn) = self.conns[side];
        loop {
            let q = node.lw.quick_status(conn).expect("alive");
            let pending = q.pending_reliable + q.pending_unreliable;
            let (reliable, len) = random_message(&mut self.rng, 0.01, 200_000);
            if pending + len > STRESS_QUEUE {
                break;
            }
            let s = &mut self.sides[side];
            let counter = if reliable { s.sent_reliable } else { s.sent_unreliable };
            let flags = if reliable { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            node.lw
                .send(conn, &make_message(reliable, counter, len), flags)
                .unwrap_or_else(|e| panic!("send failed below the buffer limit: {e}"));
            if reliable {
                s.sent_reliable += 1;
            } else {
                s.sent_unreliable += 1;
            }
            if self.rng.chance(0.3) {
                break;
            }
        }
    }

    pub fn drain(&mut self) {
        for side in 0..2 {
            let (node, conn) = self.conns[side];
            let msgs = node.lw.receive(conn, usize::MAX).expect("receive");
            let s = &mut self.sides[side];
            for m in msgs {
                let (reliable, counter) = check_message(&m.data);
                assert_eq!(reliable, m.reliable || m.data.len() > MAX_UNRELIABLE_SIZE);
                s.bytes_received += m.data.len() as u64;
                if reliable {
                    assert_eq!(counter, s.recv_reliable, "reliable message out of order or lost");
                    s.recv_reliable += 1;
                } else {
                    s.recv_unreliable += 1;
                    assert_ne!(Some(counter), s.last_unreliable, "unreliable message duplicated");
                    s.last_unreliable = Some(counter);
                }
            }
            assert_eq!(node.state(conn), ConnectionState::Connected, "connection dropped");
        }
    }

    pub fn all_reliable_arrived(&self) -> bool {
        self.sides[1].recv_reliable == self.sides[0].sent_reliable
            && self.sides[0].recv_reliable == self.sides[1].sent_reliable
    }
}

// ---------------------------------------------------------------------- figures

/// What the closing note reports.
#[derive(Debug, Default)]
pub struct Figures {
    pub connect_ms: Vec<f64>,
    pub lanewire_mb_s: f64,
    pub lanewire_loss: f64,
    pub raw_mb_s: f64,
    pub raw_loss: f64,
    pub throughput_ratio: f64,
    pub reliable_mb_s: f64,
    pub ping_p50_ms: f64,
    pub ping_p99_ms: f64,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut c = self.connect_ms.clone();
        c.sort_by(f64::total_cmp);
        write!(
            f,
            "FIGURES connect_ms(sorted)={:.1?} median={:.1} | 1200 B unreliable: lanewire {:.2} MB/s \
             (loss {:.2}%), raw data channel {:.2} MB/s (loss {:.2}%), ratio {:.1}% | 1200 B \
             reliable: {:.2} MB/s | 64 B ping-pong: p50 {:.3} ms, p99 {:.3} ms",
            c,
            c.get(c.len() / 2).copied().unwrap_or(f64::NAN),
            self.lanewire_mb_s,
            self.lanewire_loss * 100.0,
            self.raw_mb_s,
            self.raw_loss * 100.0,
            self.throughput_ratio * 100.0,
            self.reliable_mb_s,
            self.ping_p50_ms,
            self.ping_p99_ms
        )
    }
}

/// How long each throughput run sends. Short: this debug build's figures are a smoke test; the
/// reported ones come from the optimized package (`tests/e2e`).
const THROUGHPUT_MS: f64 = 1000.0;
const MSG: usize = 1200;
/// Both senders stop queueing above this many bytes in flight/queued, as the driver does.
const SENDER_QUEUE: u32 = 256 * 1024;

pub async fn measure_figures() -> Figures {
    let mut f = Figures::default();

    // Connect time, browser to browser through the signaling server.
    let a = Node::new("fig-a", Config::new(), false).await;
    let b = Node::new("fig-b", Config::new(), true).await;
    b.lw.listen_p2p(7, Config::new()).expect("listen");
    for _ in 0..5 {
        let start = now_ms();
        let c = a.lw.connect_p2p(&b.lw.identity(), 7, Config::new()).expect("connect");
        wait_for("connected", 5000, || a.connected_at(c).is_some()).await;
        f.connect_ms.push(a.connected_at(c).expect("connected") - start);
        a.lw.close(c, lanewire_web::EndReason(0), "", false).expect("close");
    }
    a.shutdown();
    b.shutdown();

    // Unreliable 1200 B messages through Lanewire: the pacer above what the channel carries,
    // so the data channel is the bottleneck for both runs.
    let mut config = Config::new();
    config.set_i32(ConfigKey::SendRateMin, 64_000_000).expect("valid");
    config.set_i32(ConfigKey::SendRateMax, 64_000_000).expect("valid");
    config.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).expect("valid");
    config.set_i32(ConfigKey::RecvBufferMessages, 1_000_000).expect("valid");
    config.set_i32(ConfigKey::RecvBufferSize, 64 * 1024 * 1024).expect("valid");
    let (a, b, ca, cb) = connected_pair("tput", config.clone()).await;
    let (mb_s, loss) = lanewire_throughput(&a, &b, ca, cb, SendFlags::UNRELIABLE_NO_NAGLE).await;
    f.lanewire_mb_s = mb_s;
    f.lanewire_loss = loss;
    a.shutdown();
    b.shutdown();

    let (mb_s, loss) = raw_throughput().await;
    f.raw_mb_s = mb_s;
    f.raw_loss = loss;
    f.throughput_ratio = f.lanewire_mb_s / f.raw_mb_s;

    // Reliable, at a fixed rate the channel sustains.
    config.set_i32(ConfigKey::SendRateMin, 4_000_000).expect("valid");
    config.set_i32(ConfigKey::SendRateMax, 4_000_000).expect("valid");
    let (a, b, ca, cb) = connected_pair("rel", config).await;
    f.reliable_mb_s = lanewire_throughput(&a, &b, ca, cb, SendFlags::RELIABLE).await.0;
    a.shutdown();
    b.shutdown();

    // Ping-pong of 64 B reliable messages, echoed from inside the readable callback.
    let (a, b, ca, cb) = connected_pair("ping", Config::new()).await;
    let rtts = ping_pong(&a, &b, ca, cb, 300).await;
    f.ping_p50_ms = rtts[rtts.len() / 2];
    f.ping_p99_ms = rtts[rtts.len() * 99 / 100];
    a.shutdown();
    b.shutdown();
    f
}

/// Counts what arrives at `b` while `a` keeps its queue full for [`THROUGHPUT_MS`].
async fn lanewire_throughput(
    a: &Node,
    b: &Node,
    ca: ConnectionHandle,
    cb: ConnectionHandle,
    flags: SendFlags,
) -> (f64, f64) {
    let received = Rc::new(Cell::new((0u64, 0.0f64, 0.0f64))); // messages, first, last
    let r = received.clone();
    let rx = b.lw.clone();
    b.lw.on_readable(move |c| {
        let n = rx.receive(c, usize::MAX).expect("receive").len() as u64;
        if n > 0 {
            let (count, first, _) = r.get();
            let t = now_ms();
            r.set((count + n, if count == 0 { t } else { first }, t));
        }
    });
    let payload = vec![7u8; MSG];
    let mut sent = 0u64;
    let start = now_ms();
    while now_ms() - start < THROUGHPUT_MS {
        loop {
            let q = a.lw.quick_status(ca).expect("status");
            if (q.pending_unreliable + q.pending_reliable) as u32 > SENDER_QUEUE {
                break;
            }
            match a.lw.send(ca, &payload, flags) {
                Ok(_) => sent += 1,
                Err(e) if e.code() == lanewire_web::ErrorCode::LimitExceeded => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        sleep(1.0).await;
    }
    // Let what is queued arrive (reliable: everything).
    let want_all = flags.is_reliable();
    let deadline = now_ms() + 10_000.0;
    loop {
        let before = received.get().0;
        sleep(300.0).await;
        let now = received.get().0;
        if (want_all && now == sent) || (!want_all && now == before) || now_ms() > deadline {
            break;
        }
    }
    b.lw.clear_on_readable();
    let _ = cb;
    let (count, first, last) = received.get();
    let mb_s = (count as f64 * MSG as f64) / ((last - first) / 1000.0) / 1e6;
    (mb_s, 1.0 - count as f64 / sent.max(1) as f64)
}

/// The same measurement over a bare unordered, maxRetransmits=0 data channel.
async fn raw_throughput() -> (f64, f64) {
    let pc1 = RtcPeerConnection::new().expect("pc");
    let pc2 = RtcPeerConnection::new().expect("pc");
    let init = RtcDataChannelInit::new();
    init.set_negotiated(true);
    init.set_id(0);
    init.set_ordered(false);
    init.set_max_retransmits(0);
    let d1 = pc1.create_data_channel_with_data_channel_dict("raw", &init);
    let d2 = pc2.create_data_channel_with_data_channel_dict("raw", &init);
    d2.set_binary_type(web_sys::RtcDataChannelType::Arraybuffer);
    // Local candidate exchange.
    let p2 = pc2.clone();
    let ice1 = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
        move |e: RtcPeerConnectionIceEvent| {
            if let Some(c) = e.candidate() {
                let _ = p2.add_ice_candidate_with_opt_rtc_ice_candidate(Some(&c));
            }
        },
    );
    let p1 = pc1.clone();
    let ice2 = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
        move |e: RtcPeerConnectionIceEvent| {
            if let Some(c) = e.candidate() {
                let _ = p1.add_ice_candidate_with_opt_rtc_ice_candidate(Some(&c));
            }
        },
    );
    pc1.set_onicecandidate(Some(ice1.as_ref().unchecked_ref()));
    pc2.set_onicecandidate(Some(ice2.as_ref().unchecked_ref()));
    let offer = JsFuture::from(pc1.create_offer()).await.expect("offer");
    let sdp = js_sys::Reflect::get(&offer, &"sdp".into()).expect("sdp").as_string().expect("sdp");
    let desc = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
    desc.set_sdp(&sdp);
    JsFuture::from(pc1.set_local_description(&desc)).await.expect("local");
    JsFuture::from(pc2.set_remote_description(&desc)).await.expect("remote");
    let answer = JsFuture::from(pc2.create_answer()).await.expect("answer");
    let sdp = js_sys::Reflect::get(&answer, &"sdp".into()).expect("sdp").as_string().expect("sdp");
    let desc = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
    desc.set_sdp(&sdp);
    JsFuture::from(pc2.set_local_description(&desc)).await.expect("local");
    JsFuture::from(pc1.set_remote_description(&desc)).await.expect("remote");
    wait_for("raw channel open", 5000, || {
        d1.ready_state() == RtcDataChannelState::Open
            && d2.ready_state() == RtcDataChannelState::Open
    })
    .await;

    let received = Rc::new(Cell::new((0u64, 0.0f64, 0.0f64)));
    let r = received.clone();
    let on_msg = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        // Touch the bytes as the Lanewire receiver does (one copy out of the event).
        let bytes = Uint8Array::new(&e.data());
        let mut buf = [0u8; MSG];
        bytes.copy_to(&mut buf[..bytes.length() as usize]);
        let (count, first, _) = r.get();
        let t = now_ms();
        r.set((count + 1, if count == 0 { t } else { first }, t));
    });
    d2.set_onmessage(Some(on_msg.as_ref().unchecked_ref()));
    let payload = vec![7u8; MSG];
    let mut sent = 0u64;
    let start = now_ms();
    while now_ms() - start < THROUGHPUT_MS {
        while d1.buffered_amount() < SENDER_QUEUE {
            if d1.send_with_u8_array(&payload).is_err() {
                break;
            }
            sent += 1;
        }
        sleep(1.0).await;
    }
    loop {
        let before = received.get().0;
        sleep(300.0).await;
        if received.get().0 == before {
            break;
        }
    }
    let (count, first, last) = received.get();
    d2.set_onmessage(None);
    pc1.set_onicecandidate(None);
    pc2.set_onicecandidate(None);
    pc1.close();
    pc2.close();
    drop((ice1, ice2, on_msg, d1, d2));
    let mb_s = (count as f64 * MSG as f64) / ((last - first) / 1000.0) / 1e6;
    (mb_s, 1.0 - count as f64 / sent.max(1) as f64)
}

async fn ping_pong(
    a: &Node,
    b: &Node,
    ca: ConnectionHandle,
    cb: ConnectionHandle,
    rounds: usize,
) -> Vec<f64> {
    let ping = [1u8; 64];
    let echo = b.lw.clone();
    b.lw.on_readable(move |c| {
        for m in echo.receive(c, usize::MAX).expect("receive") {
            echo.send(c, &m.data, SendFlags::RELIABLE_NO_NAGLE).expect("echo");
        }
    });
    let rtts = Rc::new(RefCell::new(Vec::with_capacity(rounds)));
    let sent_at = Rc::new(Cell::new(now_ms()));
    let (r, s, tx) = (rtts.clone(), sent_at.clone(), a.lw.clone());
    a.lw.on_readable(move |c| {
        for _ in tx.receive(c, usize::MAX).expect("receive") {
            let t = now_ms();
            r.borrow_mut().push(t - s.get());
            if r.borrow().len() < rounds {
                s.set(t);
                tx.send(c, &ping, SendFlags::RELIABLE_NO_NAGLE).expect("ping");
            }
        }
    });
    sent_at.set(now_ms());
    a.lw.send(ca, &ping, SendFlags::RELIABLE_NO_NAGLE).expect("ping");
    wait_for("ping-pong", 30_000, || rtts.borrow().len() == rounds).await;
    a.lw.clear_on_readable();
    b.lw.clear_on_readable();
    let _ = cb;
    let mut v = rtts.borrow().clone();
    v.sort_by(f64::total_cmp);
    v
}
