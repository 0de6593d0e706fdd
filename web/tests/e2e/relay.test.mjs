// TURN in real Chromium: two browser instances with relay-only ICE (`P2PTransportIceEnable`
// 1) connect through a coturn server the test starts on 127.0.0.1, and connection info says
// the route is relayed; with every kind of candidate the same pair takes the direct loopback
// route and says so; a wrong TURN password fails cleanly with a NAT/firewall end reason.
//
// Needs: pkg/ built (`npm run build`), target/debug/lanewire-signaling (or
// LANEWIRE_SIGNALING_BIN), coturn's turnserver (`apt-get install coturn`; `cargo xtask setup`
// installs it; without it the TURN tests are reported as skipped, and fail under CI=true),
// Chromium at /usr/lib/chromium/chromium (or CHROMIUM_BIN). Run it inside a network namespace
// with only `lo`: `cargo xtask test` does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { launchChromium, loggedPage, packedSite, skipWithout, startSignaling, withTimeout } from './harness.mjs';

const turnBin = ['/usr/bin/turnserver', '/usr/local/bin/turnserver'].find((p) => existsSync(p));
// Each test's `skip` option: skipped (and counted so) without coturn; under CI, a failure.
const noTurn = skipWithout(turnBin, "coturn's turnserver");
const TURN_USER = 'lanewire';
const TURN_PASS = 'relay-secret';

let site;
let server;
let turn;
let turnPort;
let browser;
let page;

// A UDP port free on 127.0.0.1 now.
async function freeUdpPort() {
  const s = createSocket('udp4');
  await new Promise((ok) => s.bind(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

// Resolves once coturn answers a STUN binding request on its port.
async function turnReady(port, ms) {
  const s = createSocket('udp4');
  const request = Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  try {
    await withTimeout(new Promise((ok) => {
      s.on('message', (m) => { if (m.length >= 20 && m[0] === 1 && m[1] === 1) ok(); });
      const poke = () => s.send(request, port, '127.0.0.1');
      poke();
      const t = setInterval(poke, 100);
      s.once('close', () => clearInterval(t));
    }), ms, `coturn on 127.0.0.1:${port}`);
  } finally {
    s.close();
  }
}

before(async () => {
  site = packedSite('lanewire-relay-', 'web/tests/e2e/page').dir;
  if (turnBin) {
    turnPort = await freeUdpPort();
    turn = spawn(turnBin, [
      '-n', '--no-cli', '--no-tls', '--no-dtls', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1',
      '--allow-loopback-peers', '--lt-cred-mech', `--listening-port=${turnPort}`,
      '--min-port=49152', '--max-port=65535', '--realm=lanewire.test', `--user=${TURN_USER}:${TURN_PASS}`,
      `--userdb=${join(site, 'turndb')}`, `--pidfile=${join(site, 'turn.pid')}`,
      `--log-file=${join(site, 'turn.log')}`, '--simple-log', '--no-stdout-log',
      '--no-software-attribute', '--no-rfc5780',
    ], { stdio: 'ignore' });
    await turnReady(turnPort, 10000);
  }
  let addr;
  ({ server, addr } = await startSignaling(site));
  browser = await launchChromium();
  page = await loggedPage(browser);
  await page.goto(`http://${addr}/`);
  await page.waitForFunction(() => window.lanewireReady === true, null, { timeout: 10000 });
});

after(async () => {
  await browser?.close();
  server?.kill();
  turn?.kill();
  if (site) rmSync(site, { recursive: true, force: true });
});

// Two instances in the page, B listening on port 3 and accepting, A connecting: returns
// what each side's connection info says, or the failure.
function pairThrough(iceServers, config) {
  return page.evaluate(async ({ iceServers, config }) => {
    const { Lanewire } = await import('lanewire');
    const signalingUrl = new URL('/ws', location.href).href.replace(/^http/, 'ws');
    const uid = (n) => `str:${n}-${Math.random().toString(16).slice(2, 10)}`;
    const open = (n) => Lanewire.connect({ signalingUrl, identity: uid(n), iceServers, config, timeoutMs: 5000 });
    const [a, b] = [await open('relay-a'), await open('relay-b')];
    let cb;
    b.onstatus = (ev) => { if (ev.oldState === 'none' && ev.info.listenSocket !== null) { cb = ev.conn; b.accept(cb); } };
    b.listenP2P(3);
    const t0 = performance.now();
    const ca = a.connectP2P(b.identity, 3);
    const state = () => a.connectionInfo(ca).state;
    while (state() === 'connecting' || cb === undefined || b.connectionInfo(cb).state !== 'connected') {
      if (performance.now() - t0 > 15000) throw new Error(`stuck: ${state()}`);
      if (state() !== 'connecting' && state() !== 'connected') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ia = a.connectionInfo(ca);
    const out = { state: ia.state, endReason: ia.endReason, endDebug: ia.endDebug, ms: performance.now() - t0 };
    if (ia.state === 'connected') {
      a.send(ca, 'through the route');
      let got = [];
      while (got.length === 0 && performance.now() - t0 < 15000) {
        got = b.receive(cb);
        await new Promise((r) => setTimeout(r, 5));
      }
      // The route is read from getStats() just after the channel opens.
      while (performance.now() - t0 < 15000 && !(a.connectionInfo(ca).relayed && b.connectionInfo(cb).relayed)
        && config.P2PTransportIceEnable === 1) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 200));
      out.message = got.length ? new TextDecoder().decode(got[0].data) : null;
      out.relayed = [a.connectionInfo(ca).relayed, b.connectionInfo(cb).relayed];
    }
    a.shutdown();
    b.shutdown();
    return out;
  }, { iceServers, config });
}

test('relay-only ICE connects through coturn and reports relayed', { skip: noTurn }, async () => {
  const ice = [{ urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username: TURN_USER, credential: TURN_PASS }];
  const r = await withTimeout(pairThrough(ice, { P2PTransportIceEnable: 1 }), 30000, 'relayed pair');
  console.log(`FIGURES ${JSON.stringify({ relayedConnectMs: Math.round(r.ms) })}`);
  assert.equal(r.state, 'connected', `relayed connect failed: ${r.endReason} ${r.endDebug}`);
  assert.equal(r.message, 'through the route');
  assert.deepEqual(r.relayed, [true, true]);
});

test('with every candidate kind the loopback route is direct', { skip: noTurn }, async () => {
  const ice = [{ urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username: TURN_USER, credential: TURN_PASS }];
  const r = await withTimeout(pairThrough(ice, {}), 30000, 'direct pair');
  assert.equal(r.state, 'connected', `connect failed: ${r.endReason} ${r.endDebug}`);
  assert.deepEqual(r.relayed, [false, false]);
});

test('a wrong TURN password fails cleanly', { skip: noTurn }, async () => {
  const ice = [{ urls: `turn:127.0.0.1:${turnPort}?transport=udp`, username: TURN_USER, credential: 'wrong' }];
  const r = await withTimeout(pairThrough(ice, { P2PTransportIceEnable: 1, TimeoutInitial: 3000 }), 30000, 'failing pair');
  assert.equal(r.state, 'problemDetectedLocally');
  assert.ok(r.endReason >= 5000 && r.endReason < 6000, `a local end reason: ${r.endReason} ${r.endDebug}`);
});
