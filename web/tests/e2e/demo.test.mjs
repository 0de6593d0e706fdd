// The cross-platform demo end to end: `xtask demo --no-build --port 0` starts the signaling
// server (serving www/ and the package) and the native host (`demo_client --host`); two
// Chromium pages join; everyone must see everyone, chat must cross (also at 20 % loss), dots
// must move, and a SIGINT to the process group (what a terminal's Ctrl-C sends) must stop
// every process. Screenshots of both pages go to target/demo-artifacts/.
//
// Needs: pkg/ built (`npm run build`), the xtask binary (LANEWIRE_XTASK_BIN, else
// target/debug/xtask), target/debug/lanewire-signaling and target/debug/examples/demo_client
// (`cargo build -p lanewire --all-features --examples`; LANEWIRE_SIGNALING_BIN and
// LANEWIRE_EXAMPLES_DIR are passed on to xtask), Chromium at /usr/lib/chromium/chromium (or
// CHROMIUM_BIN). Run it inside a network namespace with only `lo`: `cargo xtask test` does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { launchChromium, loggedPage, root, targetDir, withTimeout } from './harness.mjs';

const xtaskBin = process.env.LANEWIRE_XTASK_BIN ?? join(targetDir, 'debug', 'xtask');
const artifacts = join(targetDir, 'demo-artifacts');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, ms, cond) {
  const start = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

let demo;           // the xtask process (leader of its own process group)
let demoExit;       // resolves with its exit code / signal
const log = [];     // every line xtask printed
const pids = [];    // the processes xtask says it started
let browser;
let page1, page2;
const figures = {};

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  const started = Date.now();
  demo = spawn(xtaskBin, ['demo', '--no-build', '--port', '0'], {
    cwd: root, detached: true, stdio: ['ignore', 'pipe', 'inherit'],
  });
  demoExit = new Promise((r) => demo.once('exit', (code, signal) => r({ code, signal })));
  const lines = createInterface({ input: demo.stdout });
  lines.on('line', (line) => {
    log.push(line);
    const pid = / \(pid (\d+)\)$/.exec(line);
    if (pid) pids.push(Number(pid[1]));
  });
  const url = await withTimeout(new Promise((resolveUrl, reject) => {
    demo.once('exit', (code) => reject(new Error(`xtask demo exited (${code}):\n${log.join('\n')}`)));
    lines.on('line', (line) => {
      const m = /^demo: open (http:\/\/\S+) /.exec(line);
      if (m) resolveUrl(m[1]);
    });
  }), 30000, 'xtask demo printing its URL');
  figures.urlReadyMs = Date.now() - started;

  // Two tabs side by side: neither may be throttled as a background tab.
  browser = await launchChromium([
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
  ]);
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 880 } });
    const page = await loggedPage(context, name);
    const t0 = Date.now();
    await page.goto(`${url}?name=${name}`);
    return { page, t0 };
  };
  const p1 = await open('alice');
  page1 = p1.page;
  await page1.waitForFunction(() => window.demo?.state.roster.length >= 2, null, { timeout: 20000 });
  const p2 = await open('bob');
  page2 = p2.page;
  await page2.waitForFunction(() => window.demo?.state.roster.length >= 3, null, { timeout: 20000 });
  figures.newTabSeesOthersMs = Date.now() - p2.t0;
  figures.newTabPageTiming = await page2.evaluate(() => {
    const t = window.demo.state.timing;
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)]));
  });
});

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    try { process.kill(-demo.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  writeFileSync(join(artifacts, 'demo-stack.log'), log.join('\n') + '\n');
  console.log(`FIGURES ${JSON.stringify(figures)}`);
});

const hostLines = () => log.filter((l) => l.startsWith('[host] ')).map((l) => l.slice(7));

test('both pages and the native host see all three participants', async () => {
  for (const page of [page1, page2]) {
    await page.waitForFunction(() => window.demo.state.roster.length === 3, null, { timeout: 10000 });
    const roster = await page.evaluate(() => window.demo.state.roster.map(({ name, kind, route }) => ({ name, kind, route })));
    assert.deepEqual(roster, [
      { name: 'host', kind: 'native', route: 'host' },
      { name: 'alice', kind: 'browser', route: 'direct' },
      { name: 'bob', kind: 'browser', route: 'direct' },
    ]);
  }
  await until('the host printing a roster of three', 10000, () =>
    hostLines().includes('roster (3): host [native, host], alice [browser, direct], bob [browser, direct]'));
});

test('a chat line typed in page 1 appears in page 2 and in the native log', async () => {
  await page1.fill('#chat-input', 'hello from alice');
  await page1.press('#chat-input', 'Enter');
  await page2.waitForFunction(
    () => window.demo.state.chat.some((l) => l.name === 'alice' && l.text === 'hello from alice'),
    null, { timeout: 10000 });
  await until('the host logging the chat line', 10000, () => hostLines().includes('chat alice: hello from alice'));
  // The page shows it too.
  assert.match(await page2.textContent('#chat-log'), /alice: hello from alice/);
});

test('dots move', async () => {
  const before1 = await page1.evaluate(() => window.demo.dots());
  const before2 = await page2.evaluate(() => window.demo.dots());
  await sleep(1000);
  const after1 = await page1.evaluate(() => window.demo.dots());
  const after2 = await page2.evaluate(() => window.demo.dots());
  const moved = (a, b, who) => a[who] && b[who] && (a[who].x !== b[who].x || a[who].y !== b[who].y);
  for (const who of ['host', 'alice', 'bob']) {
    assert.ok(moved(before1, after1, who), `page 1 sees ${who} move: ${JSON.stringify([before1[who], after1[who]])}`);
    assert.ok(moved(before2, after2, who), `page 2 sees ${who} move: ${JSON.stringify([before2[who], after2[who]])}`);
  }
});

test('with the loss slider at 20 % chat still arrives, in order', async () => {
  await page1.fill('#loss', '20');
  const loss = await page1.evaluate(() => [
    window.demo.lw.configValue('FakePacketLossSend'), window.demo.lw.configValue('FakePacketLossRecv'),
  ]);
  assert.deepEqual(loss, [20, 20]);
  assert.equal(await page1.textContent('output[for=loss]'), '20 %');
  const lines = Array.from({ length: 10 }, (_, i) => `lossy line ${i}`);
  const sent = Date.now();
  for (const line of lines) {
    await page1.fill('#chat-input', line);
    await page1.press('#chat-input', 'Enter');
  }
  await page2.waitForFunction(
    (want) => {
      const got = window.demo.state.chat.filter((l) => l.name === 'alice' && l.text.startsWith('lossy line')).map((l) => l.text);
      return JSON.stringify(got) === JSON.stringify(want);
    },
    lines, { timeout: 20000 });
  figures.lossyChatMs = Date.now() - sent;
  await until('the host logging every lossy line', 10000, () =>
    lines.every((l) => hostLines().includes(`chat alice: ${l}`)));
  const got = hostLines().filter((l) => l.startsWith('chat alice: lossy line'));
  assert.deepEqual(got, lines.map((l) => `chat alice: ${l}`));
  // Page 1's own view of the link: the plots had samples, the status is live.
  const q = await page1.evaluate(() => window.demo.state.lastStatus);
  assert.ok(q && q.pingMs >= 0, `quick status: ${JSON.stringify(q)}`);
});

test('screenshots of both pages are saved', async () => {
  // Let the plots gather more samples at 20 % loss, and give page 2 some lag and jitter.
  await page2.fill('#lag', '40');
  await page2.fill('#jitter', '10');
  await sleep(6000);
  for (const [name, page] of [['page1', page1], ['page2', page2]]) {
    const file = join(artifacts, `${name}.png`);
    await page.screenshot({ path: file });
    assert.ok(readFileSync(file).length > 10000, `${file} looks empty`);
  }
});

test('SIGINT to the process group (Ctrl-C) stops xtask and everything it started', async () => {
  assert.ok(pids.length >= 2, `xtask reported its children: ${pids}`);
  await browser.close();
  browser = null;
  process.kill(-demo.pid, 'SIGINT');
  const exit = await withTimeout(demoExit, 10000, 'xtask demo exiting on SIGINT');
  assert.ok(exit.signal === 'SIGINT' || exit.code !== null, JSON.stringify(exit));
  const alive = (pid) => {
    if (!existsSync(`/proc/${pid}`)) return false;
    try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
  };
  await until(`every child gone (${pids})`, 10000, () => pids.every((p) => !alive(p)));
});
