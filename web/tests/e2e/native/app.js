// The browser half of the browser <-> native stress test (driven by ../native.test.mjs; the
// native half is native/examples/p2p_stress.rs, which documents the same protocol). It imports
// the packed npm package as an ES module (through the import map in index.html) and exposes
// `window.stress`:
//
//   start(opts) -> { identity, registerMs }   registers at the signaling server (the page's
//                                             origin, /ws), listens or connects, and starts the
//                                             exchange in the background
//   result()    -> { ok, why, counts, events, stats }   waits (bounded) for the run's end
//   stop()                                    shuts the instance down
//
// opts: { role: 'listen' | 'connect', port, peer (connect), seed, durationMs, maxMessages,
//         rate, timeoutMs, close: [reason, debug] | null, expectClose: [reason, debug] | null }
//
// Message format (identical in native/examples/p2p_stress.rs): the core stress test's
// self-checking format (core/tests/common) with two control kinds.
//
//   byte 0      kind: 0 unreliable data, 1 reliable data, 2 DONE (reliable), 3 ACK (reliable)
//   bytes 1..9  counter, u64 little-endian. Data: the per-kind sequence number (0, 1, 2...);
//               DONE: how many reliable data messages the sender sent before it; ACK: how many
//               reliable data messages the sender received
//   bytes 9..13 the message's total length, u32 little-endian
//   bytes 13..  byte 13 + i = (counter * 31 + i * 7) mod 256
//
// Data sizes: reliable (half the messages) 13 B to 10 KiB (half up to 1200 B), 2 % of them
// large, 10 KiB to 160 KiB; unreliable 13 B to 10 KiB likewise. Each side keeps up to 256 KiB
// queued. The receiver checks every message byte by byte, that reliable data arrives exactly
// once and in order (counter = number received so far), and that unreliable data arrives intact
// and never twice (it may be lost). After the send phase each side sends DONE; on the peer's
// DONE (its counter must equal the reliable messages received) it answers ACK (its counter must
// equal the reliable messages sent). The closer closes once it has the peer's DONE and ACK and
// its own reliable data is all acknowledged; the other side must have both before closedByPeer.
// Any problemDetectedLocally fails the run. Choices come from mulberry32 seeded with opts.seed.
import init, { Lanewire, SendFlags } from 'lanewire';

await init();

const KIND_UNRELIABLE = 0;
const KIND_RELIABLE = 1;
const KIND_DONE = 2;
const KIND_ACK = 3;
const HEADER = 13;
const QUEUE = 256 * 1024;
const BURST = 64;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const signalingUrl = (() => {
  const u = new URL('/ws', location.href);
  u.protocol = 'ws:';
  return u.href;
})();

function makeMessage(kind, counter, len) {
  len = Math.max(len, HEADER);
  const m = new Uint8Array(len);
  const v = new DataView(m.buffer);
  m[0] = kind;
  v.setUint32(1, counter % 2 ** 32, true);
  v.setUint32(5, Math.floor(counter / 2 ** 32), true);
  v.setUint32(9, len, true);
  const base = (counter % 256) * 31;
  for (let i = 0; i < len - HEADER; i++) m[HEADER + i] = (base + i * 7) & 255;
  return m;
}

// Returns [kind, counter] or throws.
function checkMessage(m) {
  if (m.length < HEADER) throw new Error(`truncated message: ${m.length} bytes`);
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const kind = m[0];
  const counter = v.getUint32(1, true) + v.getUint32(5, true) * 2 ** 32;
  const len = v.getUint32(9, true);
  if (kind > KIND_ACK) throw new Error(`unknown kind ${kind} (counter ${counter})`);
  if (len !== m.length) throw new Error(`kind ${kind} #${counter}: header says ${len} bytes, got ${m.length}`);
  const base = (counter % 256) * 31;
  for (let i = 0; i < len - HEADER; i++) {
    const want = (base + i * 7) & 255;
    if (m[HEADER + i] !== want) throw new Error(`kind ${kind} #${counter}: byte ${i} is ${m[HEADER + i]}, want ${want}`);
  }
  return [kind, counter];
}

// mulberry32, as in p2p_stress.rs.
function rng(seed) {
  let s = seed >>> 0;
  const nextU32 = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const unit = () => nextU32() / 4294967296;
  const range = (lo, hi) => lo + Math.floor(unit() * (hi - lo));
  // [reliable, length] of the next data message.
  const pick = () => {
    const reliable = unit() < 0.5;
    let len;
    if (reliable && unit() < 0.02) len = range(10 * 1024, 160 * 1024);
    else if (unit() < 0.5) len = range(HEADER, 1200);
    else len = range(1200, 10 * 1024);
    return [reliable, len];
  };
  return { pick };
}

let current = null;

async function start(opts) {
  if (current) throw new Error('a run is already going');
  const t0 = performance.now();
  const identity = `str:browser-${Math.random().toString(16).slice(2, 10)}`;
  const config = {
    SendRateMin: opts.rate, SendRateMax: opts.rate, SendBufferSize: 2 << 20,
    RecvBufferSize: 16 << 20, RecvBufferMessages: 200000,
  };
  const lw = await Lanewire.connect({ signalingUrl, identity, config, timeoutMs: 5000 });
  const registerMs = performance.now() - t0;
  const queue = [];
  const events = [];
  lw.onstatus = (ev) => {
    queue.push(ev);
    events.push(`${ev.conn}:${ev.oldState}->${ev.state}${ev.info.endReason ? ` (${ev.info.endReason} ${ev.info.endDebug})` : ''}`);
  };
  if (opts.role === 'listen') lw.listenP2P(opts.port);
  const run = new Run(lw, opts, queue, t0);
  current = { lw, run, events, promise: run.run().then(() => null, (e) => e) };
  return { identity, registerMs };
}

class Run {
  constructor(lw, opts, queue, t0) {
    this.lw = lw;
    this.opts = opts;
    this.queue = queue;
    this.t0 = t0;
    this.rng = rng(opts.seed);
    this.conn = null;
    this.unreliableSeen = new Set();
    this.doneSent = false;
    this.ackSent = false;
    this.c = {
      sentReliable: 0, sentUnreliable: 0, sentBytes: 0, recvReliable: 0, recvUnreliable: 0,
      recvBytes: 0, peerSentReliable: null, peerAcked: null, connectMs: null,
      signalingToConnectedMs: null, exchangeMs: null, pingMs: -1, endReason: 0, endDebug: '',
    };
  }

  // Sends one message; false if the send buffer is full (try again later).
  send(kind, counter, len) {
    const m = makeMessage(kind, counter, len);
    const flags = kind === KIND_UNRELIABLE ? SendFlags.Unreliable : SendFlags.Reliable;
    try {
      this.lw.send(this.conn, m, flags);
    } catch (e) {
      if (e.code === 'LimitExceeded') return false;
      throw new Error(`send of kind ${kind} #${counter} (${m.length} B) failed: ${e.code ?? ''} ${e.message}`);
    }
    this.c.sentBytes += m.length;
    return true;
  }

  pending() {
    const q = this.lw.quickStatus(this.conn);
    return [q.pendingReliable + q.pendingUnreliable, q.sentUnackedReliable];
  }

  topUp() {
    for (let n = 0; n < BURST; n++) {
      if (this.c.sentReliable + this.c.sentUnreliable >= this.opts.maxMessages) return;
      const [reliable, len] = this.rng.pick();
      if (this.pending()[0] + len > QUEUE + 16 * 1024) return;
      if (reliable) {
        if (!this.send(KIND_RELIABLE, this.c.sentReliable, len)) return;
        this.c.sentReliable++;
      } else {
        if (!this.send(KIND_UNRELIABLE, this.c.sentUnreliable, len)) return;
        this.c.sentUnreliable++;
      }
    }
  }

  drain() {
    const c = this.c;
    for (const m of this.lw.receive(this.conn)) {
      const [kind, counter] = checkMessage(m.data);
      c.recvBytes += m.data.length;
      if ((kind === KIND_UNRELIABLE) === m.reliable) {
        throw new Error(`kind ${kind} #${counter} arrived with reliable=${m.reliable}`);
      }
      if (kind === KIND_UNRELIABLE) {
        if (this.unreliableSeen.has(counter)) throw new Error(`unreliable #${counter} arrived twice`);
        this.unreliableSeen.add(counter);
        c.recvUnreliable++;
      } else if (kind === KIND_RELIABLE) {
        if (c.peerSentReliable !== null) throw new Error(`reliable #${counter} after the peer's DONE`);
        if (counter !== c.recvReliable) {
          throw new Error(`reliable #${counter} arrived when #${c.recvReliable} was due (lost, duplicated or out of order)`);
        }
        c.recvReliable++;
      } else if (kind === KIND_DONE) {
        if (c.peerSentReliable !== null) throw new Error('DONE arrived twice');
        if (counter !== c.recvReliable) throw new Error(`the peer sent ${counter} reliable messages, ${c.recvReliable} arrived`);
        c.peerSentReliable = counter;
        this.ackSent = this.send(KIND_ACK, counter, HEADER);
      } else {
        if (c.peerAcked !== null) throw new Error('ACK arrived twice');
        if (!this.doneSent || counter !== c.sentReliable) {
          throw new Error(`the peer acknowledged ${counter} reliable messages, ${c.sentReliable} were sent`);
        }
        c.peerAcked = counter;
      }
    }
  }

  phase(sendUntil) {
    const c = this.c;
    if (this.conn === null) return 'waiting for the peer to connect';
    if (sendUntil === null) return 'connecting';
    if (!this.doneSent) return 'sending';
    if (c.peerSentReliable === null) return "waiting for the peer's DONE";
    if (c.peerAcked === null) return "waiting for the peer's ACK";
    if (this.opts.close) return 'waiting for our data to be acknowledged';
    return 'waiting for the peer to close';
  }

  async run() {
    const { opts, c } = this;
    const started = performance.now();
    const deadline = started + opts.timeoutMs;
    let connectStarted = started;
    if (opts.role === 'connect') {
      connectStarted = performance.now();
      this.conn = this.lw.connectP2P(opts.peer, opts.port);
    }
    let sendUntil = null;
    let exchangeStarted = started;
    for (;;) {
      const now = performance.now();
      if (now > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms ${this.phase(sendUntil)}`);
      while (this.queue.length > 0) {
        const ev = this.queue.shift();
        if (ev.state === 'problemDetectedLocally') {
          throw new Error(`problemDetectedLocally (${ev.info.endReason} ${ev.info.endDebug}) on ${ev.conn}`);
        }
        if (ev.oldState === 'none' && ev.info.listenSocket !== null) {
          if (this.conn === null) {
            this.lw.accept(ev.conn);
            this.conn = ev.conn;
            connectStarted = performance.now();
          } else {
            this.lw.close(ev.conn, 1999, 'busy', false);
          }
          continue;
        }
        if (ev.conn !== this.conn) continue;
        if (ev.state === 'connected') {
          c.connectMs = performance.now() - connectStarted;
          c.signalingToConnectedMs = performance.now() - this.t0;
          exchangeStarted = performance.now();
          sendUntil = exchangeStarted + opts.durationMs;
        } else if (ev.state === 'closedByPeer') {
          this.drain();
          c.endReason = ev.info.endReason;
          c.endDebug = ev.info.endDebug;
          this.lw.close(this.conn, 0, '', false);
          this.conn = null;
          return this.closedByPeer();
        }
      }
      if (this.conn !== null && sendUntil !== null) {
        if (!this.doneSent) {
          if (now < sendUntil) {
            this.topUp();
          } else if (this.send(KIND_DONE, c.sentReliable, HEADER)) {
            this.doneSent = true;
            c.exchangeMs = performance.now() - exchangeStarted;
          }
        }
        this.drain();
        // DONE and ACK wait while the send buffer is full (retransmissions).
        if (c.peerSentReliable !== null && !this.ackSent) this.ackSent = this.send(KIND_ACK, c.peerSentReliable, HEADER);
        c.pingMs = this.lw.quickStatus(this.conn).pingMs;
        if (opts.close && c.peerAcked !== null && this.ackSent) {
          const [queued, unacked] = this.pending();
          if (queued === 0 && unacked === 0) {
            c.exchangeMs = performance.now() - exchangeStarted;
            this.lw.close(this.conn, opts.close[0], opts.close[1], false);
            this.conn = null;
            c.endReason = opts.close[0];
            c.endDebug = opts.close[1];
            return;
          }
        }
      }
      await sleep(2);
    }
  }

  closedByPeer() {
    const c = this.c;
    if (!this.opts.expectClose) {
      throw new Error(`closed by the peer (${c.endReason} ${JSON.stringify(c.endDebug)}) but this side was to close`);
    }
    if (c.peerSentReliable === null || c.peerAcked === null) {
      throw new Error('closed by the peer before its DONE and ACK arrived');
    }
    const [reason, debug] = this.opts.expectClose;
    if (c.endReason !== reason || c.endDebug !== debug) {
      throw new Error(`closed by the peer with ${c.endReason} ${JSON.stringify(c.endDebug)}, want ${reason} ${JSON.stringify(debug)}`);
    }
  }
}

async function result() {
  if (!current) throw new Error('no run started');
  const { run, events, lw } = current;
  const error = await current.promise;
  if (error && run.conn !== null) {
    try { lw.close(run.conn, 2000, 'browser stress failed', false); } catch { /* already gone */ }
    run.conn = null;
  }
  return {
    ok: error === null,
    why: error === null ? '' : String(error.message ?? error),
    counts: run.c,
    events,
    stats: lw.stats(),
  };
}

function stop() {
  if (!current) return;
  current.lw.shutdown();
  current = null;
}

window.stress = { start, result, stop };
window.stressReady = true;
