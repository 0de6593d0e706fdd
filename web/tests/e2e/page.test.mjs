// The built npm package in real Chromium: `npm pack`, unpack it into a site as a consumer's
// node_modules would hold it, serve the site and the signaling WebSocket from one
// lanewire-signaling process, and drive a page that imports the package as an ES module.
//
// Needs: pkg/ built (`npm run build`), target/debug/lanewire-signaling (or
// LANEWIRE_SIGNALING_BIN), Chromium at /usr/lib/chromium/chromium (or CHROMIUM_BIN). Run it
// inside a network namespace with only `lo`: `cargo xtask test` does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';

import { launchChromium, loggedPage, packedSite, startSignaling, withTimeout } from './harness.mjs';

let site;
let server;
let browser;
let page;
let base;

before(async () => {
  site = packedSite('lanewire-e2e-', 'web/tests/e2e/page').dir;
  let addr;
  ({ server, addr } = await startSignaling(site));
  base = `http://${addr}/`;
  browser = await launchChromium();
  page = await loggedPage(browser);
  await page.goto(base);
  await page.waitForFunction(() => window.lanewireReady === true, null, { timeout: 10000 });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (site) rmSync(site, { recursive: true, force: true });
});

test('the packed package is served with the right content types', async () => {
  const wasm = await fetch(new URL('node_modules/lanewire/pkg/lanewire_bg.wasm', base));
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  const js = await fetch(new URL('node_modules/lanewire/pkg/lanewire.js', base));
  assert.match(js.headers.get('content-type'), /javascript/);
});

test('two instances in one page connect through the signaling server and talk', async () => {
  const r = await withTimeout(page.evaluate(() => window.lanewireTests.basics()), 30000, 'basics');
  assert.deepEqual(r.events.slice(0, 2), ['none->connecting', 'connecting->connected']);
  assert.ok(r.configKeys > 30);
});

test('figures: throughput against a raw data channel, connect time, ping-pong', async () => {
  const f = await withTimeout(page.evaluate(() => window.lanewireTests.figures()), 120000, 'figures');
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const r2 = (x) => +x.toFixed(2);
  const summary = {
    connectMsMedian: r2(median(f.connectMs)),
    connectMs: f.connectMs.map(r2),
    rawMBps: f.rounds.map((r) => r2(r.raw.mbps)),
    lanewireMBps: f.rounds.map((r) => r2(r.lw.mbps)),
    rawLoss: f.rounds.map((r) => +r.raw.loss.toFixed(4)),
    lanewireLoss: f.rounds.map((r) => +r.lw.loss.toFixed(4)),
    ratios: f.rounds.map((r) => r2(r.ratio)),
    ratioMedian: r2(median(f.rounds.map((r) => r.ratio))),
    // Less sensitive to one slow round on a loaded machine than the median of the ratios.
    ratioOfMedians: r2(median(f.rounds.map((r) => r.lw.mbps)) / median(f.rounds.map((r) => r.raw.mbps))),
    stalls: f.rounds.map((r) => r.lw.stats.stalls),
    reliableMBps: r2(f.reliable.mbps),
    rawReliableMBps: r2(f.rawReliable.mbps),
    reliableRatio: r2(f.reliable.mbps / f.rawReliable.mbps),
    pingP50Ms: +f.ping.p50.toFixed(3),
    pingP99Ms: +f.ping.p99.toFixed(3),
  };
  console.log(`FIGURES ${JSON.stringify(summary)}`);
  assert.ok(summary.connectMsMedian < 1000, `connect took ${summary.connectMsMedian} ms`);
  assert.ok(f.rounds.every((r) => r.lw.received > 100), 'Lanewire delivered almost nothing');
  assert.equal(f.reliable.loss, 0, 'reliable messages lost (default config flood)');
  assert.equal(f.rawReliable.loss, 0, 'the raw reliable channel lost messages');
});
