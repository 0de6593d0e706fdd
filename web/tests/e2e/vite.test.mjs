// The packed npm package in a Vite project: `npm pack`, unpack it into a fresh project's
// node_modules as `npm install` would, `vite build` a page that imports it by its bare name,
// serve the built site from lanewire-signaling --static and open it in Chromium, where it
// loads its .wasm (Vite emits it as an asset from the package's `new URL(..., import.meta.url)`)
// and registers at the server.
//
// Needs: pkg/ built (`npm run build`), vite (a devDependency), target/debug/lanewire-signaling
// (or LANEWIRE_SIGNALING_BIN), Chromium at /usr/lib/chromium/chromium (or CHROMIUM_BIN). Run
// it inside a network namespace with only `lo`: `cargo xtask test` does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { build } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
const signalingBin = process.env.LANEWIRE_SIGNALING_BIN ?? join(targetDir, 'debug', 'lanewire-signaling');
const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/lib/chromium/chromium';

let project;
let server;
let browser;
let base;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

before(async () => {
  project = mkdtempSync(join(tmpdir(), 'lanewire-vite-'));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', project], {
    cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' },
  }));
  const pkgDir = join(project, 'node_modules', 'lanewire');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', join(project, packed[0].filename), '-C', pkgDir, '--strip-components=1']);
  writeFileSync(join(project, 'package.json'), JSON.stringify({
    name: 'consumer', private: true, type: 'module', dependencies: { lanewire: packed[0].version },
  }));
  writeFileSync(join(project, 'index.html'), `<!doctype html>
<html><head><meta charset="utf-8"><title>consumer</title></head>
<body><script type="module" src="./main.js"></script></body></html>
`);
  // What a game's entry module does: import by the bare name, init, connect.
  writeFileSync(join(project, 'main.js'), `import init, { Lanewire, SendFlags } from 'lanewire';

await init();
const signalingUrl = new URL('/ws', location.href).href.replace(/^http/, 'ws');
try {
  const lw = await Lanewire.connect({ signalingUrl, identity: 'str:vite-consumer', timeoutMs: 5000 });
  window.result = { registered: lw.signalingConnected, identity: lw.identity, reliable: SendFlags.Reliable };
  lw.shutdown();
} catch (e) {
  window.result = { error: String(e) };
}
`);
  await build({ root: project, logLevel: 'warn', build: { outDir: join(project, 'dist'), target: 'es2022' } });

  server = spawn(signalingBin, ['--bind', '127.0.0.1:0', '--dev-insecure', '--static', join(project, 'dist'), '--log', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: server.stdout });
  const addr = await withTimeout(new Promise((ok, reject) => {
    server.once('exit', (code) => reject(new Error(`signaling server exited (${code})`)));
    lines.once('line', (line) => {
      const m = /^listening on (\S+)/.exec(line);
      m ? ok(m[1]) : reject(new Error(`unexpected first line: ${line}`));
    });
  }), 10000, 'signaling server start');
  base = `http://${addr}/`;
  browser = await chromium.launch({
    executablePath: chromiumBin,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-extensions'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (project) rmSync(project, { recursive: true, force: true });
});

test('vite build bundles the package and emits its .wasm as an asset', () => {
  const assets = readdirSync(join(project, 'dist', 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `no .wasm among ${assets}`);
  assert.ok(assets.some((f) => f.endsWith('.js')), `no .js among ${assets}`);
});

test('the built page loads the module and registers at the signaling server', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 15000 });
  const result = await page.evaluate(() => window.result);
  assert.deepEqual(errors, []);
  assert.deepEqual(result, { registered: true, identity: 'str:vite-consumer', reliable: 8 });
});
