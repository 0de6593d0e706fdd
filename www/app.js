// The demo page: one Lanewire instance per tab, one connection to the host (a native
// `demo_client --host`, identity str:demo-host), which relays everyone's dot and chat and sends
// the roster. Message format: protocol.js. State for tests and the curious: `window.demo`.
import init, { Lanewire, SendFlags } from 'lanewire';
import * as P from './protocol.js';
import { Plot } from './plot.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');
const name = (params.get('name') || `tab-${hex(2)}`).trim().slice(0, 32);
const identity = `str:web-${hex(4)}`;
const hostIdentity = params.get('host') || 'str:demo-host';
const hostPort = Number(params.get('port') ?? 0);
const signalingUrl = (() => {
  const u = new URL('/ws', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
})();
const color = (id) => `hsl(${(id * 137.508) % 360} 80% 62%)`;

const state = {
  name, identity, hostIdentity,
  connected: false,
  myId: null,
  roster: [],          // [{ id, name, kind, route, routeText, pingMs, quality }]
  chat: [],            // [{ from, name, text }]
  dots: new Map(),     // id -> { x, y, tx, ty } in arena units (0..65535)
  me: { x: 10000 + Math.random() * 45000, y: 10000 + Math.random() * 45000 },
  target: null,        // where a click sent our dot
  keys: new Set(),
  auto: true,
  timing: {},          // ms since navigation: init, registered, connected, roster
  sent: { pos: 0, chat: 0 },
};
let lw = null;
let conn = null;
window.demo = {
  state,
  get lw() { return lw; },
  get conn() { return conn; },
  /** Names in the roster, in order. */
  names: () => state.roster.map((p) => p.name),
  /** Every dot this tab draws, by name (ours included). */
  dots: () => Object.fromEntries(state.roster.map((p) => {
    const d = p.id === state.myId ? state.me : state.dots.get(p.id);
    return [p.name, d ? { x: Math.round(d.x), y: Math.round(d.y) } : null];
  })),
};

function setStatus(text, cls = '') {
  const el = $('status');
  el.textContent = text;
  el.className = `pill ${cls}`;
}

function sys(text) {
  addChatLine(null, text);
}

function addChatLine(from, text) {
  const who = from === null ? null : state.roster.find((p) => p.id === from);
  const line = { from, name: who?.name ?? (from === null ? '' : `#${from}`), text };
  state.chat.push(line);
  const div = document.createElement('div');
  if (from === null) {
    div.className = 'sys';
    div.textContent = text;
  } else {
    const b = document.createElement('b');
    b.style.color = color(from);
    b.textContent = `${line.name}: `;
    div.append(b, document.createTextNode(text));
  }
  const log = $('chat-log');
  log.append(div);
  log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------- connection

function connect() {
  conn = lw.connectP2P(hostIdentity, hostPort);
  lw.configureLanes(conn, [0, 0], [1, 1]); // positions and chat share the link equally
  setStatus(`connecting to ${hostIdentity}`);
}

function onStatus(ev) {
  if (ev.conn !== conn) return;
  if (ev.state === 'connected') {
    state.connected = true;
    state.timing.connected ??= performance.now();
    lw.send(conn, P.hello(name), SendFlags.Reliable | SendFlags.NoNagle, P.LANE_CHAT);
    setStatus('connected', 'connected');
  } else if (ev.state === 'closedByPeer' || ev.state === 'problemDetectedLocally') {
    state.connected = false;
    state.roster = [];
    state.dots.clear();
    renderRoster();
    sys(`lost the host (${ev.info.endDebug || ev.info.endReason}); retrying in 2 s`);
    setStatus('no host: retrying', 'problem');
    lw.close(conn);
    conn = null;
    setTimeout(connect, 2000);
  }
}

function drain() {
  if (conn === null) return;
  let msgs;
  try { msgs = lw.receive(conn); } catch { return; }
  for (const m of msgs) {
    const msg = P.decode(m.data);
    if (msg?.type === P.WORLD) onWorld(msg);
    else if (msg?.type === P.CHAT) addChatLine(msg.from, msg.text);
    else if (msg?.type === P.ROSTER) onRoster(msg);
  }
}

function onWorld({ dots }) {
  for (const { id, x, y } of dots) {
    if (id === state.myId) continue;
    const d = state.dots.get(id);
    if (d) { d.tx = x; d.ty = y; } else state.dots.set(id, { x, y, tx: x, ty: y });
  }
}

function onRoster({ you, people }) {
  const before = new Map(state.roster.map((p) => [p.id, p]));
  const first = state.myId === null;
  state.myId = you;
  state.roster = people;
  state.timing.roster ??= performance.now();
  for (const p of people) {
    if (!before.has(p.id) && p.id !== you && !first) sys(`${p.name} joined (${p.kind}, ${p.route})`);
  }
  const now = new Set(people.map((p) => p.id));
  for (const [id, p] of before) {
    if (!now.has(id)) { sys(`${p.name} left`); state.dots.delete(id); }
  }
  if (first) sys(`you joined as ${name}: ${people.length} here`);
  renderRoster();
}

function renderRoster() {
  const rows = state.roster.map((p) => {
    const tr = document.createElement('tr');
    if (p.id === state.myId) tr.className = 'you';
    const cell = (content) => { const td = document.createElement('td'); td.append(content); tr.append(td); return td; };
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.style.background = color(p.id);
    cell(dot);
    cell(p.id === state.myId ? `${p.name} (you)` : p.name);
    const badge = (text) => { const s = document.createElement('span'); s.className = `badge ${text}`; s.textContent = text; return s; };
    cell(badge(p.kind));
    cell(badge(p.route)).title = p.routeText;
    cell(p.pingMs === null ? '–' : `${p.pingMs} ms`);
    cell(p.quality === null ? '–' : `${p.quality} %`);
    return tr;
  });
  $('roster').tBodies[0].replaceChildren(...rows);
  const mine = state.roster.find((p) => p.id === state.myId);
  $('net-route').textContent = mine ? `${mine.route}: ${mine.routeText}` : '';
}

// ---------------------------------------------------------------- movement, 30 Hz

const SPEED = 1400; // arena units per tick
function tick() {
  const me = state.me;
  const t = performance.now() / 1000;
  if (state.auto) {
    const [fx, fy, phase] = state.wander;
    me.x = P.ARENA * (0.5 + 0.4 * Math.sin(t * fx + phase));
    me.y = P.ARENA * (0.5 + 0.4 * Math.sin(t * fy + phase * 2));
  } else {
    let dx = 0, dy = 0;
    const k = state.keys;
    if (k.has('ArrowLeft') || k.has('a')) dx -= 1;
    if (k.has('ArrowRight') || k.has('d')) dx += 1;
    if (k.has('ArrowUp') || k.has('w')) dy -= 1;
    if (k.has('ArrowDown') || k.has('s')) dy += 1;
    if (dx || dy) state.target = null;
    if (state.target) {
      const ex = state.target.x - me.x, ey = state.target.y - me.y, len = Math.hypot(ex, ey);
      if (len < SPEED) { me.x = state.target.x; me.y = state.target.y; state.target = null; }
      else { dx = ex / len; dy = ey / len; }
    }
    const len = Math.hypot(dx, dy) || 1;
    me.x = Math.min(P.ARENA, Math.max(0, me.x + (dx / len) * SPEED));
    me.y = Math.min(P.ARENA, Math.max(0, me.y + (dy / len) * SPEED));
  }
  if (state.connected) {
    try {
      lw.send(conn, P.pos(me.x, me.y), SendFlags.Unreliable | SendFlags.NoNagle, P.LANE_POS);
      state.sent.pos++;
    } catch { /* a full buffer drops a position: the next one follows in 33 ms */ }
  }
}
// Each tab wanders its own curve.
state.wander = [0.4 + Math.random() * 0.5, 0.3 + Math.random() * 0.5, Math.random() * 6.28];

function manual() {
  if (!state.auto) return;
  state.auto = false;
  $('autopilot').checked = false;
}

const arena = $('arena');
arena.addEventListener('pointerdown', (e) => {
  const r = arena.getBoundingClientRect();
  manual();
  state.target = { x: ((e.clientX - r.left) / r.width) * P.ARENA, y: ((e.clientY - r.top) / r.height) * P.ARENA };
  arena.focus();
});
window.addEventListener('keydown', (e) => {
  if (e.target === $('chat-input')) return;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'w', 'a', 's', 'd'].includes(k)) {
    manual();
    state.keys.add(k);
    e.preventDefault();
  }
});
window.addEventListener('keyup', (e) => state.keys.delete(e.key.length === 1 ? e.key.toLowerCase() : e.key));
window.addEventListener('blur', () => state.keys.clear());
$('autopilot').addEventListener('change', (e) => { state.auto = e.target.checked; state.target = null; });

// ---------------------------------------------------------------- drawing

function render() {
  const dpr = window.devicePixelRatio || 1;
  const w = arena.clientWidth, h = arena.clientHeight;
  if (arena.width !== Math.round(w * dpr)) { arena.width = Math.round(w * dpr); arena.height = Math.round(h * dpr); }
  const g = arena.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = '#0a0d12';
  g.fillRect(0, 0, w, h);
  g.strokeStyle = '#161c26';
  g.lineWidth = 1;
  for (let i = 1; i < 12; i++) {
    const x = Math.round((w * i) / 12) + 0.5, y = Math.round((h * i) / 12) + 0.5;
    g.beginPath(); g.moveTo(x, 0); g.lineTo(x, h); g.stroke();
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
  }
  const sx = w / P.ARENA, sy = h / P.ARENA;
  g.font = '12px system-ui, sans-serif';
  g.textAlign = 'center';
  for (const p of state.roster) {
    const mine = p.id === state.myId;
    const d = mine ? state.me : state.dots.get(p.id);
    if (!d) continue;
    if (!mine) { d.x += (d.tx - d.x) * 0.35; d.y += (d.ty - d.y) * 0.35; }
    const x = d.x * sx, y = d.y * sy;
    g.fillStyle = color(p.id);
    g.beginPath(); g.arc(x, y, 9, 0, Math.PI * 2); g.fill();
    if (mine) { g.strokeStyle = '#ffffff'; g.lineWidth = 2; g.beginPath(); g.arc(x, y, 13, 0, Math.PI * 2); g.stroke(); }
    g.fillStyle = '#d8dee9';
    g.fillText(`${p.name}${p.kind === 'native' ? ' ⚙' : ''}`, x, y - 16);
  }
  if (!state.connected) {
    g.fillStyle = '#8b95a7';
    g.fillText($('status').textContent, w / 2, h / 2);
  }
  requestAnimationFrame(render);
}

// ---------------------------------------------------------------- network panel, 1 Hz

const plots = {
  ping: new Plot($('plot-ping'), { title: 'ping (ms)', series: [{ label: 'rtt', color: '#6cc6ff' }] }),
  quality: new Plot($('plot-quality'), {
    title: 'quality (%)', max: 100,
    series: [{ label: 'local', color: '#6be39a' }, { label: 'remote', color: '#c3a6ff' }],
  }),
  bytes: new Plot($('plot-bytes'), {
    title: 'bytes / s', format: (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0)),
    series: [{ label: 'in', color: '#6cc6ff' }, { label: 'out', color: '#ffcc66' }],
  }),
  queue: new Plot($('plot-queue'), {
    title: 'send queue (ms)', format: (v) => v.toFixed(1), series: [{ label: 'queue', color: '#ff7a7a' }],
  }),
};

function sample() {
  let q = null;
  if (conn !== null && state.connected) {
    try { q = lw.quickStatus(conn); } catch { q = null; }
  }
  const known = (v, scale = 1) => (q && v >= 0 ? v * scale : null);
  plots.ping.push([known(q?.pingMs)]);
  plots.quality.push([known(q?.qualityLocal, 100), known(q?.qualityRemote, 100)]);
  plots.bytes.push([known(q?.inBytesPerSec), known(q?.outBytesPerSec)]);
  plots.queue.push([known(q?.queueTimeMs)]);
  state.lastStatus = q;
}

// ---------------------------------------------------------------- link conditioner

const conditioner = {
  loss: (v) => [['FakePacketLossSend', v], ['FakePacketLossRecv', v]],
  lag: (v) => [['FakePacketLagSend', v], ['FakePacketLagRecv', v]],
  jitter: (v) => [
    ['FakePacketJitterSendAvg', v], ['FakePacketJitterRecvAvg', v],
    ['FakePacketJitterSendMax', Math.max(100, v * 4)], ['FakePacketJitterRecvMax', Math.max(100, v * 4)],
  ],
};
for (const [id, values] of Object.entries(conditioner)) {
  const input = $(id);
  const apply = () => {
    const v = Number(input.value);
    input.nextElementSibling.textContent = `${v} ${id === 'loss' ? '%' : 'ms'}`;
    if (!lw) return;
    for (const [key, value] of values(v)) lw.setConfig(key, value); // live, global to this tab
  };
  input.addEventListener('input', apply);
  input.addEventListener('change', apply);
}

// ---------------------------------------------------------------- chat

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (!state.connected) { sys('not connected: not sent'); return; }
  lw.send(conn, P.say(text), SendFlags.Reliable | SendFlags.NoNagle, P.LANE_CHAT);
  state.sent.chat++;
  input.value = '';
});

// ---------------------------------------------------------------- start

async function main() {
  $('my-name').textContent = name;
  $('my-identity').textContent = identity;
  $('net-title').textContent = `this tab → ${hostIdentity}`;
  requestAnimationFrame(render);
  setInterval(sample, 1000);
  await init();
  state.timing.init = performance.now();
  setStatus('registering');
  lw = await Lanewire.connect({ signalingUrl, identity, timeoutMs: 10000 });
  state.timing.registered = performance.now();
  lw.onstatus = onStatus;
  lw.onreadable = drain;
  for (const id of Object.keys(conditioner)) $(id).dispatchEvent(new Event('change'));
  connect();
  setInterval(tick, 33);
  setInterval(drain, 100); // onreadable is a hint; this keeps a hidden tab's queue short too
}

main().catch((e) => {
  console.error(e);
  setStatus(`error: ${e.message ?? e}`, 'problem');
});
