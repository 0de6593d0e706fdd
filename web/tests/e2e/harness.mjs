// What the Playwright tests share: where the binaries are, bounded waits, the packed npm
// package unpacked into a site as `npm install` would, a lanewire-signaling process that serves
// the site and its WebSocket, and headless Chromium with the flags WebRTC on loopback needs
// (see ../shared/TESTING.md). Every test runs inside a network namespace with only `lo`.

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(root, process.env.CARGO_TARGET_DIR)
  : join(root, 'target');
export const signalingBin = process.env.LANEWIRE_SIGNALING_BIN ?? join(targetDir, 'debug', 'lanewire-signaling');
export const examplesDir = process.env.LANEWIRE_EXAMPLES_DIR ?? join(targetDir, 'debug', 'examples');
export const chromiumBin = process.env.CHROMIUM_BIN ?? '/usr/lib/chromium/chromium';

/** True when the environment says this is CI (`CI=true` or `CI=1`). */
export const inCi = /^(true|1)$/i.test(process.env.CI ?? '');

/**
 * node:test's `skip` option for tests that need `what` (a tool `cargo xtask setup` installs):
 * `false` when `have` is truthy, else the reason, which node:test reports as a skip (`# skipped
 * N`, counted as skipped by `cargo xtask test`, never as passed). Under CI a missing tool is a
 * failure, not a skip: this throws, which fails the test file.
 */
export function skipWithout(have, what) {
  if (have) return false;
  const why = `${what} is missing (\`cargo xtask setup\` installs it)`;
  if (inCi) throw new Error(`${why}; with CI=true a missing tool is a failure, not a skip`);
  return why;
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A fresh temporary directory holding `npm pack`'s package (exactly what would be published)
 * unpacked in `node_modules/lanewire`, plus the files of `pageDir` (relative to the
 * repository) if given. Returns { dir, version }.
 */
export function packedSite(prefix, pageDir) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' },
  }));
  const pkgDir = join(dir, 'node_modules', 'lanewire');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, packed[0].filename), '-C', pkgDir, '--strip-components=1']);
  if (pageDir) cpSync(join(root, pageDir), dir, { recursive: true });
  return { dir, version: packed[0].version };
}

/**
 * Starts `lanewire-signaling --dev-insecure` on 127.0.0.1 (a free port) serving `staticDir`.
 * Returns { server, addr } once it printed its address.
 */
export async function startSignaling(staticDir) {
  const server = spawn(signalingBin, ['--bind', '127.0.0.1:0', '--dev-insecure', '--static', staticDir, '--log', 'warn'], {
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
  return { server, addr };
}

/** Headless Chromium, with loopback ICE candidates allowed and no calls home. */
export function launchChromium(extraArgs = []) {
  return withTimeout(chromium.launch({
    executablePath: chromiumBin,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-extensions',
      '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      ...extraArgs,
    ],
  }), 20000, 'Chromium start');
}

/**
 * A new page of `browser` (or of a browser context) whose errors and warnings go to stderr
 * with a `[name]` prefix.
 */
export async function loggedPage(browser, name = 'page') {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`[${name}] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`[${name} error] ${e.stack ?? e}`));
  return page;
}
