// The built npm package in Node.js: its exports, enums, config table, errors, the signaling
// registration against a scripted WebSocket, and its TypeScript declarations (tsc --noEmit on
// a small consumer). Needs pkg/ (`npm run build`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Self-reference by package name: resolved through package.json "exports", as a consumer would.
import { initSync, Lanewire, SendFlags, EndReason, configKeys, maxMessageSize } from 'lanewire';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
initSync({ module: readFileSync(join(root, 'pkg/lanewire_bg.wasm')) });

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

test('exports', () => {
  assert.equal(typeof Lanewire, 'function');
  assert.equal(typeof Lanewire.connect, 'function');
  for (const m of ['listenP2P', 'connectP2P', 'accept', 'close', 'send', 'receive', 'receiveOnPollGroup',
    'createPollGroup', 'setPollGroup', 'quickStatus', 'connectionInfo', 'detailedStatus', 'setConfig',
    'configValue', 'setConnectionConfig', 'configureLanes', 'flush', 'pollEvent', 'stats', 'shutdown']) {
    assert.equal(typeof Lanewire.prototype[m], 'function', m);
  }
  assert.equal(maxMessageSize(), 512 * 1024);
});

test('send flags and end reasons have the reference values', () => {
  assert.deepEqual({ ...SendFlags }, {
    Unreliable: 0, NoNagle: 1, NoDelay: 4, UnreliableNoDelay: 5, Reliable: 8, ReliableNoNagle: 9,
    0: 'Unreliable', 1: 'NoNagle', 4: 'NoDelay', 5: 'UnreliableNoDelay', 8: 'Reliable', 9: 'ReliableNoNagle',
  });
  assert.equal(EndReason.AppGeneric, 1000);
  assert.equal(EndReason.MiscTimeout, 5003);
  assert.equal(EndReason.MiscP2PRendezvous, 5008);
  assert.equal(EndReason.MiscP2PNatFirewall, 5009);
});

test('config table matches the TypeScript key names', () => {
  const keys = configKeys();
  const names = keys.map((k) => k.name);
  const dts = readFileSync(join(root, 'pkg/lanewire.d.ts'), 'utf8');
  const union = /export type ConfigKeyName =([^;]*);/.exec(dts)[1];
  const declared = [...union.matchAll(/"(\w+)"/g)].map((m) => m[1]);
  assert.deepEqual(declared, names);
  const loss = keys.find((k) => k.name === 'FakePacketLossSend');
  assert.deepEqual({ type: loss.type, scope: loss.scope, default: loss.default, max: loss.max },
    { type: 'float', scope: 'global', default: 0, max: 100 });
  assert.equal(keys.find((k) => k.name === 'TimeoutInitial').default, 10000);
});

test('bad options reject with LanewireError codes', async () => {
  let e = await rejection(Lanewire.connect({}));
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'LanewireError');
  assert.equal(e.code, 'InvalidParam');
  assert.match(e.message, /signalingUrl/);
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://127.0.0.1:9', identity: 'no-kind' }));
  assert.equal(e.code, 'InvalidParam');
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://x', identity: 'str:a', config: { NoSuchKey: 1 } }));
  assert.equal(e.code, 'BadConfig');
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://x', identity: 'str:a', config: { FakePacketLossSend: 101 } }));
  assert.equal(e.code, 'BadConfig');
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://x', identity: 'str:a', config: { NagleTime: 1.5 } }));
  assert.equal(e.code, 'BadConfig');
});

/** A scripted stand-in for the browser's WebSocket: answers `register` as `reply` says. */
function fakeWebSocket(reply, log) {
  return class FakeWebSocket {
    static OPEN = 1;
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      setTimeout(() => { this.readyState = 1; this.onopen?.({}); }, 1);
    }
    send(text) {
      const msg = JSON.parse(text);
      log.push(msg);
      const answer = reply(msg);
      if (answer) setTimeout(() => this.onmessage?.({ data: JSON.stringify(answer) }), 1);
    }
    close() {
      this.readyState = 3;
    }
  };
}

test('registration speaks the signaling protocol and maps its errors', async (t) => {
  const saved = globalThis.WebSocket;
  t.after(() => { globalThis.WebSocket = saved; });
  const log = [];
  globalThis.WebSocket = fakeWebSocket((m) => m.type === 'register'
    ? { type: 'registered', identity: m.identity, protocol: 1, max_frame_bytes: 65536 } : null, log);
  const lw = await Lanewire.connect({ signalingUrl: 'ws://fake/ws', identity: 'str:alice', token: 'lws1.t' });
  assert.deepEqual(log[0], { type: 'register', protocol: 1, identity: 'str:alice', token: 'lws1.t' });
  assert.equal(lw.identity, 'str:alice');
  assert.equal(lw.signalingConnected, true);
  lw.setConfig('FakePacketLagSend', 30);
  assert.equal(lw.configValue('FakePacketLagSend'), 30);
  assert.throws(() => lw.setConfig('FakePacketLagSend', 'x'), (e) => e.code === 'BadConfig');
  // No RTCPeerConnection in Node: a clean error, not a crash.
  assert.throws(() => lw.connectP2P('str:bob', 7), (e) => e.code === 'Unsupported');
  assert.throws(() => lw.send(12345, 'x'), (e) => e.code === 'InvalidHandle');
  assert.throws(() => lw.receive(-1), (e) => e.code === 'InvalidHandle');
  lw.shutdown();
  assert.throws(() => lw.listenP2P(1), (e) => e.code === 'Closed');

  globalThis.WebSocket = fakeWebSocket(() => ({ type: 'error', code: 'bad_token', message: 'forged' }), []);
  let e = await rejection(Lanewire.connect({ signalingUrl: 'ws://fake/ws', identity: 'str:alice' }));
  assert.equal(e.code, 'BadToken');
  assert.match(e.message, /forged/);
  globalThis.WebSocket = fakeWebSocket(() => null, []);
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://fake/ws', identity: 'str:alice', timeoutMs: 50 }));
  assert.equal(e.code, 'Timeout');
  delete globalThis.WebSocket;
  e = await rejection(Lanewire.connect({ signalingUrl: 'ws://fake/ws', identity: 'str:alice' }));
  assert.equal(e.code, 'Unsupported');
});

test('package.json ships only the built package', () => {
  assert.deepEqual(pkgJson.files, ['pkg/lanewire.js', 'pkg/lanewire.d.ts', 'pkg/lanewire_bg.wasm',
    'pkg/lanewire_bg.wasm.d.ts', 'pkg/snippets/']);
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], {
    cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  const files = JSON.parse(out)[0].files.map((f) => f.path);
  for (const f of files) {
    assert.ok(['package.json', 'README.md', 'LICENSE'].includes(f) || pkgJson.files.some((p) => f.startsWith(p)), f);
  }
  for (const f of ['package.json', 'pkg/lanewire.js', 'pkg/lanewire.d.ts', 'pkg/lanewire_bg.wasm']) {
    assert.ok(files.includes(f), `${f} missing from the package`);
  }
  // wasm-bindgen's inline JavaScript, imported by pkg/lanewire.js.
  const snippet = /from '\.\/(snippets\/[^']+)'/.exec(readFileSync(join(root, 'pkg/lanewire.js'), 'utf8'));
  assert.ok(snippet && files.includes(`pkg/${snippet[1]}`), 'snippet missing from the package');
});

test('TypeScript declarations type-check a consumer (tsc --noEmit)', () => {
  const tsc = join(root, 'node_modules/.bin/tsc');
  execFileSync(tsc, ['-p', join(root, 'web/tests/types/tsconfig.json')], { cwd: root, stdio: 'inherit' });
});
