// The demo's messages, shared with native/examples/demo_client.rs (its module docs hold the
// same table). The first byte is the type; integers are little-endian; strings are UTF-8.
// Lane 0 carries positions (unreliable, 30 Hz), lane 1 everything else (reliable).
//
//   1 HELLO   to host    lane 1  kind u8 (0 native, 1 browser), name (rest, <= 32 bytes)
//   2 POS     to host    lane 0  x u16, y u16 (the arena is 0..=65535 in both axes)
//   3 WORLD   from host  lane 0  count u8, then per participant: id u16, x u16, y u16
//   4 SAY     to host    lane 1  text (rest, <= 200 bytes)
//   5 CHAT    from host  lane 1  from id u16, text (rest)
//   6 ROSTER  from host  lane 1  your id u16, count u8, then per participant: id u16, kind u8,
//                                route u8 (0 the host itself, 1 direct, 2 relayed, 3 unknown),
//                                ping ms u16 (65535 unknown), quality % u8 (255 unknown),
//                                name (u8 length + bytes), route text (u8 length + bytes)
//
// Ping, quality and route in the roster are the host's view of each connection.

export const HELLO = 1, POS = 2, WORLD = 3, SAY = 4, CHAT = 5, ROSTER = 6;
export const LANE_POS = 0, LANE_CHAT = 1;
export const KIND_NATIVE = 0, KIND_BROWSER = 1;
export const ROUTES = ['host', 'direct', 'relayed', 'unknown'];
export const ARENA = 65535;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of `s`, cut to at most `max` bytes on a character boundary. */
function utf8(s, max) {
  let chars = [...s];
  let bytes = encoder.encode(s);
  while (bytes.length > max) {
    chars = chars.slice(0, -1);
    bytes = encoder.encode(chars.join(''));
  }
  return bytes;
}

function withType(type, head, tail = new Uint8Array(0)) {
  const out = new Uint8Array(1 + head.length + tail.length);
  out[0] = type;
  out.set(head, 1);
  out.set(tail, 1 + head.length);
  return out;
}

export const hello = (name) => withType(HELLO, [KIND_BROWSER], utf8(name, 32));
export const say = (text) => withType(SAY, utf8(text, 200));

export function pos(x, y) {
  const out = new Uint8Array(5);
  const v = new DataView(out.buffer);
  out[0] = POS;
  v.setUint16(1, Math.round(x), true);
  v.setUint16(3, Math.round(y), true);
  return out;
}

/** A message from the host as an object, or null if it is not one. */
export function decode(data) {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 1;
  const u8 = () => v.getUint8(at++);
  const u16 = () => { const x = v.getUint16(at, true); at += 2; return x; };
  const str8 = () => { const n = u8(); const s = decoder.decode(data.subarray(at, at + n)); at += n; return s; };
  try {
    switch (data[0]) {
      case WORLD: {
        const dots = [];
        for (let n = u8(); n > 0; n--) dots.push({ id: u16(), x: u16(), y: u16() });
        return { type: WORLD, dots };
      }
      case CHAT: {
        const from = u16();
        return { type: CHAT, from, text: decoder.decode(data.subarray(at)) };
      }
      case ROSTER: {
        const you = u16();
        const people = [];
        for (let n = u8(); n > 0; n--) {
          const id = u16(), kind = u8(), route = u8(), ping = u16(), quality = u8();
          const name = str8(), routeText = str8();
          people.push({
            id, name, routeText,
            kind: kind === KIND_BROWSER ? 'browser' : 'native',
            route: ROUTES[route] ?? 'unknown',
            pingMs: ping === 65535 ? null : ping,
            quality: quality === 255 ? null : quality,
          });
        }
        return { type: ROSTER, you, people };
      }
      default:
        return null;
    }
  } catch {
    return null; // truncated: never trust the wire
  }
}
