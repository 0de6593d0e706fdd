// Browser <-> native: the random-message stress test between the packed npm package in real
// headless Chromium (page: native/app.js) and a native `lanewire` peer with the WebRTC backend
// (native/examples/p2p_stress.rs), through one real lanewire-signaling process that also serves
// the page. Both ways: the browser connects to a native listener (the native side closes), and
// the native side connects to a browser listener (the browser closes). Each side checks what it
// receives (reliable: exactly once, in order, byte-identical; unreliable: intact, never twice),
// the DONE/ACK exchange cross-checks the counts, the other side must see closedByPeer with the
// closer's reason and text, and neither may see problemDetectedLocally. Prints `FIGURES {...}`
// (connect times, messages and bytes each way).
//
// Message format (identical in native/app.js and native/examples/p2p_stress.rs, documented in
// full there): byte 0 kind (0 unreliable data, 1 reliable data, 2 DONE, 3 ACK), bytes 1..9
// counter (u64 LE: per-kind sequence number; DONE: reliable messages sent; ACK: reliable
// messages received), bytes 9..13 total length (u32 LE), then byte 13 + i = (counter * 31 +
// i * 7) mod 256.
//
// Needs: pkg/ built (`npm run build`), target/debug/lanewire-signaling (or
// LANEWIRE_SIGNALING_BIN), target/debug/examples/p2p_stress (`cargo build -p lanewire
// --all-features --examples`, or LANEWIRE_EXAMPLES_DIR), Chromium at /usr/lib/chromium/chromium
// (or CHROMIUM_BIN). Run it inside a network namespace with only `lo`: `cargo xtask test` does;
// by hand, after building outside the namespace:
//
//   unshare --net -- sh -c 'ip link set lo up && node --test --test-reporter=tap web/tests/e2e/native.test.mjs'

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import {
  examplesDir, launchChromium, loggedPage, packedSite, signalingBin, startSignaling, withTimeout,
} from './harness.mjs';

const stressBin = join(examplesDir, 'p2p_stress');

// The exchange: each side sends for DURATION_MS at RATE bytes/s (both pacer bounds), at most
// MAX_MESSAGES messages; every run must end within RUN_TIMEOUT_MS. LANEWIRE_STRESS_MS and
// LANEWIRE_STRESS_RATE override the first two (longer or faster runs by hand).
const DURATION_MS = Number(process.env.LANEWIRE_STRESS_MS ?? 3000);
const RATE = Number(process.env.LANEWIRE_STRESS_RATE ?? 1_000_000);
const MAX_MESSAGES = 20000;
const RUN_TIMEOUT_MS = 25000;

let site;
let server;
let browser;
let page;
let signalingUrl;
const children = new Set();

const suffix = () => Math.random().toString(16).slice(2, 10);

// Starts p2p_stress; `ready` resolves with its ready line's registration ms, `connected` with its
// connect ms, `done` with { code, ok, why, counts, lines } once it exited.
function startNative(args) {
  const child = spawn(stressBin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const lines = [];
  let onReady;
  let onConnected;
  const ready = new Promise((res, rej) => { onReady = res; child.once('error', rej); });
  const connected = new Promise((res) => { onConnected = res; });
  const exited = new Promise((res) => child.once('exit', (code, signal) => { children.delete(child); res(code ?? signal); }));
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    if (line.startsWith('ready ')) onReady(Number(line.split(' ')[2]));
    if (line.startsWith('connected ')) onConnected(Number(line.split(' ')[1]));
  });
  // Lines end before the exit event only once stdout closed.
  const closed = new Promise((res) => rl.once('close', res));
  const done = Promise.all([exited, closed]).then(([code]) => {
    const last = lines.findLast((l) => l.startsWith('result ')) ?? '';
    const json = last.indexOf(' {"');
    const counts = json >= 0 ? JSON.parse(last.slice(json + 1)) : null;
    const ok = last.startsWith('result ok ');
    const why = ok ? '' : (json >= 0 ? last.slice('result fail '.length, json) : `no result line (exit ${code}): ${lines.join(' | ')}`);
    return { code, ok, why, counts, lines };
  });
  // Fails the wait for `ready` at once if the process dies first.
  const readyOrExit = Promise.race([ready, exited.then((code) => { throw new Error(`p2p_stress exited (${code}) before ready: ${lines.join(' | ')}`); })]);
  return { child, ready: readyOrExit, connected, done };
}

function nativeArgs(identity, role, seed, close) {
  return [
    signalingUrl, identity, ...role, '--loopback', '--seed', String(seed),
    '--duration-ms', String(DURATION_MS), '--max-messages', String(MAX_MESSAGES), '--rate', String(RATE),
    '--timeout-ms', String(RUN_TIMEOUT_MS), ...close,
  ];
}

function pageOpts(extra) {
  return { durationMs: DURATION_MS, maxMessages: MAX_MESSAGES, rate: RATE, timeoutMs: RUN_TIMEOUT_MS, ...extra };
}

// Cross-checks one direction: what `rx` got of what `tx` sent.
function checkDirection(name, tx, rx) {
  assert.equal(rx.recvReliable, tx.sentReliable, `${name}: reliable messages received vs sent`);
  assert.equal(rx.peerSentReliable, tx.sentReliable, `${name}: DONE count`);
  assert.equal(tx.peerAcked, tx.sentReliable, `${name}: ACK count`);
  assert.ok(rx.recvUnreliable <= tx.sentUnreliable, `${name}: more unreliable messages than sent`);
  assert.ok(tx.sentReliable > 50, `${name}: only ${tx.sentReliable} reliable messages sent`);
  assert.ok(tx.sentUnreliable > 50, `${name}: only ${tx.sentUnreliable} unreliable messages sent`);
  // Loopback loses next to nothing; a big loss means the driver drops what it should carry.
  assert.ok(rx.recvUnreliable >= 0.5 * tx.sentUnreliable,
    `${name}: ${rx.recvUnreliable} of ${tx.sentUnreliable} unreliable messages arrived`);
}

function figures(dir, browserSide, nativeSide, elapsedMs) {
  const b = browserSide.counts;
  const n = nativeSide.counts;
  const mb = (x) => +(x / 1e6).toFixed(3);
  const r1 = (x) => (typeof x === 'number' ? +x.toFixed(1) : x);
  return {
    dir,
    elapsedMs: Math.round(elapsedMs),
    browserRegisterMs: r1(browserSide.registerMs),
    browserConnectMs: r1(b.connectMs),
    browserSignalingToConnectedMs: r1(b.signalingToConnectedMs),
    nativeRegisterMs: nativeSide.registerMs,
    nativeConnectMs: n.connectMs,
    browserToNative: {
      reliable: b.sentReliable, unreliableSent: b.sentUnreliable, unreliableArrived: n.recvUnreliable,
      MB: mb(n.recvBytes), MBps: +(n.recvBytes / 1e3 / b.exchangeMs).toFixed(3),
    },
    nativeToBrowser: {
      reliable: n.sentReliable, unreliableSent: n.sentUnreliable, unreliableArrived: b.recvUnreliable,
      MB: mb(b.recvBytes), MBps: +(b.recvBytes / 1e3 / n.exchangeMs).toFixed(3),
    },
    pingMs: { browser: b.pingMs, native: n.pingMs },
    nativeTransport: {
      packetsSent: n.packetsSent, packetsLost: n.packetsLost, bytesRetransmitted: n.bytesRetransmitted,
      droppedBufferFull: n.droppedBufferFull,
    },
    exchangeMs: { browser: Math.round(b.exchangeMs), native: Math.round(n.exchangeMs) },
    browserStats: browserSide.stats,
  };
}

before(async () => {
  for (const [what, path] of [['lanewire-signaling', signalingBin], ['p2p_stress example', stressBin]]) {
    if (!existsSync(path)) throw new Error(`no ${what} at ${path}: run \`cargo build -p lanewire-signaling && cargo build -p lanewire --all-features --examples\``);
  }
  site = packedSite('lanewire-e2e-native-', 'web/tests/e2e/native').dir;
  let addr;
  ({ server, addr } = await startSignaling(site));
  children.add(server);
  server.once('exit', () => children.delete(server));
  signalingUrl = `ws://${addr}/ws`;
  browser = await launchChromium();
  page = await loggedPage(browser);
  await page.goto(`http://${addr}/`, { timeout: 10000 });
  await page.waitForFunction(() => window.stressReady === true, null, { timeout: 10000 });
});

after(async () => {
  await page?.evaluate(() => window.stress?.stop()).catch(() => {});
  await browser?.close();
  for (const child of children) child.kill('SIGKILL');
  if (site) rmSync(site, { recursive: true, force: true });
});

// Waits for both halves; returns [browser result, native result] or throws with both sides' say.
async function bothResults(native, registerMs) {
  const wait = RUN_TIMEOUT_MS + 5000;
  const [b, n] = await Promise.all([
    withTimeout(page.evaluate(() => window.stress.result()), wait, 'the browser half'),
    withTimeout(native.done, wait, 'the native half (p2p_stress) to exit'),
  ]);
  b.registerMs = registerMs;
  n.registerMs = await native.ready;
  await page.evaluate(() => window.stress.stop());
  const detail = `browser: ${b.ok ? 'ok' : b.why} (events ${b.events.join(', ')}; counts ${JSON.stringify(b.counts)}); `
    + `native: ${n.ok ? 'ok' : n.why} (exit ${n.code}; counts ${JSON.stringify(n.counts)})`;
  assert.ok(b.ok, `browser half failed: ${detail}`);
  assert.ok(n.ok && n.code === 0, `native half failed: ${detail}`);
  return [b, n];
}

test('browser connects to a native listener, random messages both ways, native closes', async () => {
  const started = performance.now();
  const nativeId = `str:native-${suffix()}`;
  const reason = [1042, 'native is done'];
  const native = startNative(nativeArgs(nativeId, ['--listen', '5'], 11, ['--close', String(reason[0]), reason[1]]));
  await withTimeout(native.ready, 10000, 'p2p_stress to print ready');
  const { registerMs } = await withTimeout(
    page.evaluate((o) => window.stress.start(o), pageOpts({ role: 'connect', peer: nativeId, port: 5, seed: 12, close: null, expectClose: reason })),
    10000, 'the page to register and connect');
  const [b, n] = await bothResults(native, registerMs);
  console.log(`FIGURES ${JSON.stringify(figures('browser-connects', b, n, performance.now() - started))}`);
  checkDirection('browser -> native', b.counts, n.counts);
  checkDirection('native -> browser', n.counts, b.counts);
  assert.deepEqual([b.counts.endReason, b.counts.endDebug], reason, 'browser saw the native close reason');
  assert.ok(b.events.some((e) => e.endsWith(`connected->closedByPeer (${reason[0]} ${reason[1]})`)), `browser events: ${b.events}`);
  assert.ok(!b.events.some((e) => e.includes('problemDetectedLocally')), `browser events: ${b.events}`);
});

test('native connects to a browser listener, random messages both ways, browser closes', async () => {
  const started = performance.now();
  const reason = [1043, 'browser is done'];
  const { identity, registerMs } = await withTimeout(
    page.evaluate((o) => window.stress.start(o), pageOpts({ role: 'listen', port: 6, seed: 21, close: reason, expectClose: null })),
    10000, 'the page to register and listen');
  const native = startNative(nativeArgs(`str:native-${suffix()}`, ['--connect', identity, '6'], 22,
    ['--expect-close', String(reason[0]), reason[1]]));
  await withTimeout(native.ready, 10000, 'p2p_stress to print ready');
  const [b, n] = await bothResults(native, registerMs);
  console.log(`FIGURES ${JSON.stringify(figures('native-connects', b, n, performance.now() - started))}`);
  checkDirection('browser -> native', b.counts, n.counts);
  checkDirection('native -> browser', n.counts, b.counts);
  assert.deepEqual([n.counts.endReason, n.counts.endDebug], reason, 'native saw the browser close reason');
  assert.ok(!b.events.some((e) => e.includes('problemDetectedLocally')), `browser events: ${b.events}`);
});
