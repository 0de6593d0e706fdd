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
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

import { launchChromium, packedSite, startSignaling } from './harness.mjs';

let project;
let server;
let browser;
let base;

before(async () => {
  const packed = packedSite('lanewire-vite-');
  project = packed.dir;
  writeFileSync(join(project, 'package.json'), JSON.stringify({
    name: 'consumer', private: true, type: 'module', dependencies: { lanewire: packed.version },
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

  let addr;
  ({ server, addr } = await startSignaling(join(project, 'dist')));
  base = `http://${addr}/`;
  browser = await launchChromium();
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
