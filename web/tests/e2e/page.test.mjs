// The built npm package in real Chromium: `npm pack`, unpack it into a site as a consumer's
// node_modules would hold it, serve the site and the signaling WebSocket from one
// lanewire-signaling process, and drive a page that imports the package as an ES module.
//
// Needs: pkg/ built (`npm run build`), target/debug/lanewire-signaling (or
// LANEWIRE_SIGNALING_BIN), Chromium at /usr/lib/chromium/chromium (or CHROMIUM_BIN). Run it
// inside a network namespace with only `lo`: `cargo xtask test` does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
const signalingBin = process.env.LANEWIRE_SIGNALING_BIN ?? join(targetDir, 'debug', 'lanewire-signaling');
const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/lib/chromium/chromium';

let site;
let server;
let browser;
let page;
let base;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'lanewire-e2e-'));
  // npm pack: exactly what would be published.
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', site], {
    cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' },
  }));
  const tarball = join(site, packed[0].filename);
  const pkgDir = join(site, 'node_modules', 'lanewire');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);
  rmSync(tarball);
  cpSync(join(root, 'web/tests/e2e/page'), site, { recursive: true });

  server = spawn(signalingBin, ['--bind', '127.0.0.1:0', '--dev-insecure', '--static', site, '--log', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: server.stdout });
  const addr = await withTimeout(new Promise((resolveAddr, reject) => {
    server.once('exit', (code) => reject(new Error(`signaling server exited (${code})`)));
    lines.once('line', (line) => {
      const m = /^listening on (\S+)/.exec(line);
      m ? resolveAddr(m[1]) : reject(new Error(`unexpected first line: ${line}`));
    });
  }), 10000, 'signaling server start');
  base = `http://${addr}/`;

  browser = await chromium.launch({
    executablePath: chromiumBin,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-extensions',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
  page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`[page] ${m.text()}`); });
  page.on("pageerror", (e) => console.error(`[page error] ${e.stack ?? e}`));
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
    lanewireLoss: f.rounds.map((r) => +r.lw.loss.toFixed(4)),
    ratios: f.rounds.map((r) => r2(r.ratio)),
    ratioMedian: r2(median(f.rounds.map((r) => r.ratio))),
    stalls: f.rounds.map((r) => r.lw.stats.stalls),
    reliableMBps: r2(f.reliable.mbps),
    pingP50Ms: +f.ping.p50.toFixed(3),
    pingP99Ms: +f.ping.p99.toFixed(3),
  };
  console.log(`FIGURES ${JSON.stringify(summary)}`);
  assert.ok(summary.connectMsMedian < 1000, `connect took ${summary.connectMsMedian} ms`);
  assert.ok(f.rounds.every((r) => r.lw.received > 100), 'Lanewire delivered almost nothing');
  assert.equal(f.reliable.loss, 0, 'reliable messages lost');
});
