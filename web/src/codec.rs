//! The signaling protocol's JSON for the shared message types of
//! `lanewire_signaling::protocol`, written by hand and parsed with the browser's own
//! `JSON.parse`, so the .wasm carries neither serde nor serde_json (about 50 KB raw of derived
//! visitors and number parsing).
//!
//! The unit tests below check it against the serde implementation both ways: what
//! [`encode`] writes, `ClientMessage::from_json` reads back as the same message, and what
//! `ServerMessage::to_json` writes, [`decode`] reads back as the same message. Like the serde
//! client side, decoding is lenient about unknown fields and error codes (newer servers), and
//! strict about identities and ids (validated by their constructors).

use crate::prelude::*;
use js_sys::{Array, JSON, Reflect};
use lanewire_signaling::protocol::{
    ClientMessage, ConnectionId, ErrorCode, ErrorFrame, IceServer, Identity, Payload, ServerMessage,
};
use wasm_bindgen::JsValue;

/// Writes one JSON object, field by field.
struct Writer {
    out: String,
    first: bool,
}

impl Writer {
    fn new(kind: &str) -> Writer {
        let mut w = Writer { out: String::with_capacity(64), first: true };
        w.out.push('{');
        w.str("type", kind);
        w
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        quote(&mut self.out, key);
        self.out.push(':');
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        quote(&mut self.out, value);
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        lanewire_core::text::push_u64(&mut self.out, value);
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn quote(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn payload_json(p: &Payload) -> String {
    match p {
        Payload::Offer { sdp, port } => {
            let mut w = Writer::new("offer");
            w.str("sdp", sdp);
            w.num("port", u64::from(*port));
            w.finish()
        }
        Payload::Answer { sdp } => {
            let mut w = Writer::new("answer");
            w.str("sdp", sdp);
            w.finish()
        }
        Payload::Candidate { candidate, sdp_mid, sdp_mline_index } => {
            let mut w = Writer::new("candidate");
            w.str("candidate", candidate);
            if let Some(mid) = sdp_mid {
                w.str("sdp_mid", mid);
            }
            if let Some(i) = sdp_mline_index {
                w.num("sdp_mline_index", u64::from(*i));
            }
            w.finish()
        }
        Payload::Reject { reason } => {
            let mut w = Writer::new("reject");
            w.str("reason", reason);
            w.finish()
        }
        Payload::Bye => Writer::new("bye").finish(),
    }
}

/// The text frame of a client message.
pub(crate) fn encode(msg: &ClientMessage) -> String {
    match msg {
        ClientMessage::Register { protocol, identity, token } => {
            let mut w = Writer::new("register");
            w.num("protocol", u64::from(*protocol));
            w.str("identity", identity.as_str());
            if let Some(t) = token {
                w.str("token", t);
            }
            w.finish()
        }
        ClientMessage::Signal { to, connection, payload } => {
            let mut w = Writer::new("signal");
            w.str("to", to.as_str());
            w.str("connection", connection.as_str());
            w.raw("payload", &payload_json(payload));
            w.finish()
        }
    }
}

fn field(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn string(v: &JsValue, key: &str) -> Option<String> {
    field(v, key).as_string()
}

/// An integer field in `0..=max`.
fn int(v: &JsValue, key: &str, max: f64) -> Option<u64> {
    let n = field(v, key).as_f64()?;
    ((0.0..=max).contains(&n) && crate::sys::is_whole(n)).then_some(n as u64)
}

/// An optional field: absent (or null) is `Some(None)`, present but invalid is `None`.
fn optional<T>(
    v: &JsValue,
    key: &str,
    read: impl FnOnce(&JsValue) -> Option<T>,
) -> Option<Option<T>> {
    let f = field(v, key);
    if f.is_undefined() || f.is_null() { Some(None) } else { read(&f).map(Some) }
}

/// The minted ICE servers of `registered` (TURN credentials). Lenient: anything that is not a
/// list of `{urls: [..], username, credential}` is left out.
fn ice_servers(list: &JsValue) -> Vec<IceServer> {
    if !Array::is_array(list) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in Array::from(list).iter() {
        let urls = field(&s, "urls");
        if Array::is_array(&urls) {
            out.push(IceServer {
                urls: Array::from(&urls).iter().filter_map(|u| u.as_string()).collect(),
                username: string(&s, "username").unwrap_or_default(),
                credential: string(&s, "credential").unwrap_or_default(),
            });
        }
    }
    out
}

fn identity(v: &JsValue, key: &str) -> Option<Identity> {
    Identity::new(string(v, key)?).ok()
}

fn connection_id(v: &JsValue, key: &str) -> Option<ConnectionId> {
    ConnectionId::new(string(v, key)?).ok()
}

fn payload(v: &JsValue) -> Option<Payload> {
    Some(match string(v, "type")?.as_str() {
        "offer" => {
            Payload::Offer { sdp: string(v, "sdp")?, port: int(v, "port", 4294967295.0)? as u32 }
        }
        "answer" => Payload::Answer { sdp: string(v, "sdp")? },
        "candidate" => Payload::Candidate {
            candidate: string(v, "candidate")?,
            sdp_mid: optional(v, "sdp_mid", JsValue::as_string)?,
            sdp_mline_index: optional(v, "sdp_mline_index", |f| {
                let n = f.as_f64()?;
                ((0.0..=65535.0).contains(&n) && crate::sys::is_whole(n)).then_some(n as u16)
            })?,
        },
        "reject" => Payload::Reject { reason: string(v, "reason")? },
        "bye" => Payload::Bye,
        _ => return None,
    })
}

/// Parses a server text frame; `None` for anything that is not a valid server message.
pub(crate) fn decode(text: &str) -> Option<ServerMessage> {
    let v = JSON::parse(text).ok()?;
    if !v.is_object() {
        return None;
    }
    const U64_SAFE: f64 = 9007199254740991.0;
    Some(match string(&v, "type")?.as_str() {
        "registered" => ServerMessage::Registered {
            identity: identity(&v, "identity")?,
            protocol: int(&v, "protocol", 4294967295.0)? as u32,
            max_frame_bytes: int(&v, "max_frame_bytes", U64_SAFE)?,
            ice_servers: ice_servers(&field(&v, "ice_servers")),
        },
        "signal" => ServerMessage::Signal {
            from: identity(&v, "from")?,
            connection: connection_id(&v, "connection")?,
            payload: payload(&field(&v, "payload"))?,
        },
        "error" => {
            let code = string(&v, "code")?;
            let code = ErrorCode::ALL.into_iter().find(|c| c.as_str() == code);
            ServerMessage::Error(ErrorFrame {
                code: code.unwrap_or(ErrorCode::Other),
                message: string(&v, "message")?,
                to: optional(&v, "to", |f| Identity::new(f.as_string()?).ok())?,
                connection: optional(&v, "connection", |f| ConnectionId::new(f.as_string()?).ok())?,
                retry_after_ms: optional(&v, "retry_after_ms", |_| {
                    int(&v, "retry_after_ms", U64_SAFE)
                })?,
                protocol: optional(&v, "protocol", |_| {
                    int(&v, "protocol", 4294967295.0).map(|p| p as u32)
                })?,
            })
        }
        "replaced" => ServerMessage::Replaced { identity: identity(&v, "identity")? },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn id(s: &str) -> Identity {
        Identity::new(s).expect("valid")
    }

    fn payloads() -> Vec<Payload> {
        vec![
            Payload::Offer {
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\"q\" \\ \u{1}é".into(),
                port: 4_000_000_000,
            },
            Payload::Answer { sdp: "v=0\r\n".into() },
            Payload::Candidate {
                candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            },
            Payload::Candidate { candidate: String::new(), sdp_mid: None, sdp_mline_index: None },
            Payload::Reject { reason: "nobody listens on virtual port 3".into() },
            Payload::Bye,
        ]
    }

    #[wasm_bindgen_test]
    fn client_messages_read_back_by_serde() {
        let mut msgs = vec![
            ClientMessage::Register { protocol: 1, identity: id("str:Locke Lamora"), token: None },
            ClientMessage::Register {
                protocol: 1,
                identity: id("str:a"),
                token: Some("lws1.x".into()),
            },
        ];
        for payload in payloads() {
            msgs.push(ClientMessage::Signal {
                to: id("str:bob"),
                connection: ConnectionId::new("00ff00ff00ff00ff").expect("valid"),
                payload,
            });
        }
        for m in msgs {
            let text = encode(&m);
            assert_eq!(ClientMessage::from_json(&text).expect(&text), m, "{text}");
        }
    }

    #[wasm_bindgen_test]
    fn server_messages_written_by_serde_read_back() {
        let mut msgs = vec![
            ServerMessage::Registered {
                identity: id("str:a"),
                protocol: 1,
                max_frame_bytes: 65536,
                ice_servers: Vec::new(),
            },
            ServerMessage::Registered {
                identity: id("str:a"),
                protocol: 1,
                max_frame_bytes: 65536,
                ice_servers: vec![IceServer {
                    urls: vec!["turn:127.0.0.1:3478".into(), "turns:t.example:5349".into()],
                    username: "1700000000:str:a".into(),
                    credential: "17vVIFrX+/q7CIdNF8tkwhoPW2g=".into(),
                }],
            },
            ServerMessage::Replaced { identity: id("str:a") },
        ];
        for payload in payloads() {
            msgs.push(ServerMessage::Signal {
                from: id("str:alice"),
                connection: ConnectionId::new("7f3a").expect("valid"),
                payload,
            });
        }
        for code in ErrorCode::ALL {
            let mut frame = ErrorFrame::new(code, format!("about {code}"));
            frame.to = Some(id("str:bob"));
            frame.connection = Some(ConnectionId::new("c1").expect("valid"));
            frame.retry_after_ms = Some(20);
            frame.protocol = Some(1);
            msgs.push(ServerMessage::Error(frame));
            msgs.push(ServerMessage::Error(ErrorFrame::new(code, "")));
        }
        for m in msgs {
            let text = m.to_json();
            assert_eq!(decode(&text), Some(m), "{text}");
        }
    }

    #[wasm_bindgen_test]
    fn lenient_where_serde_is_and_strict_where_it_is() {
        let newer = r#"{"type":"error","code":"brand_new","message":"m","extra":1}"#;
        let Some(ServerMessage::Error(f)) = decode(newer) else { panic!("{newer}") };
        assert_eq!(f.code, ErrorCode::Other);
        for bad in [
            "",
            "[]",
            "null",
            r#"{"type":"registered","identity":"nokind","protocol":1,"max_frame_bytes":1}"#,
            r#"{"type":"registered","identity":"str:a","protocol":-1,"max_frame_bytes":1}"#,
            r#"{"type":"signal","from":"str:a","connection":"bad id","payload":{"type":"bye"}}"#,
            r#"{"type":"signal","from":"str:a","connection":"c","payload":{"type":"nope"}}"#,
            r#"{"type":"what"}"#,
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
