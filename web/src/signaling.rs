//! The WebSocket to the signaling server: JSON text frames of the shared
//! `lanewire_signaling::protocol` types, one per frame.

use crate::prelude::*;
use alloc::rc::Weak;
use core::cell::RefCell;
use lanewire_core::text;

use lanewire_signaling::protocol::ClientMessage;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::codec;
use crate::driver::{self, Inner};
use crate::error::{Error, ErrorCode};

/// The signaling connection. Owns its event handlers; dropping it detaches them and closes
/// the socket.
pub(crate) struct Signaling {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
}

const OPEN: u8 = 0;
const MESSAGE: u8 = 1;
const CLOSE: u8 = 2;

/// Every event of the WebSocket, passed on to the driver.
fn on_event(weak: &Weak<RefCell<Inner>>, kind: u8, ev: Event) {
    match kind {
        OPEN => driver::on_signaling_open(weak),
        MESSAGE => {
            // Binary frames are not part of the protocol: ignored.
            if let Some(text) = ev.unchecked_into::<MessageEvent>().data().as_string() {
                match codec::decode(&text) {
                    Some(msg) => driver::on_signaling_message(weak, msg),
                    None => web_sys_warn("lanewire: ignored a malformed signaling frame"),
                }
            }
        }
        _ => {
            let ev = ev.unchecked_into::<CloseEvent>();
            let why =
                text!("signaling WebSocket closed (code ", ev.code(), " \"", ev.reason(), "\")");
            driver::on_signaling_closed(weak, why);
        }
    }
}

impl Signaling {
    /// Opens the WebSocket; progress arrives through the driver's entry points.
    pub(crate) fn open(url: &str, weak: Weak<RefCell<Inner>>) -> Result<Signaling, Error> {
        let ws = WebSocket::new(url).map_err(|e| {
            // A bad URL is a SyntaxError; a missing WebSocket global a ReferenceError.
            let code = match e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.name())) {
                Some(name) if name == "SyntaxError" => ErrorCode::InvalidParam,
                _ => ErrorCode::Unsupported,
            };
            Error::from_js(code, "opening the signaling WebSocket", &e)
        })?;
        // One closure type for the three handlers (one invoke shim in the .wasm).
        let handler = |kind: u8| {
            let w = weak.clone();
            Closure::<dyn FnMut(Event)>::new(move |ev: Event| on_event(&w, kind, ev))
        };
        let (on_open, on_message, on_close) = (handler(OPEN), handler(MESSAGE), handler(CLOSE));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Signaling { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// Sends one message; false when the socket is not open (the message is lost, as signals
    /// may be).
    pub(crate) fn send(&self, msg: &ClientMessage) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
            && self.ws.send_with_str(&codec::encode(msg)).is_ok()
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(s: &str);
}

/// `console.warn`, for what the application cannot act on but a developer wants to see.
pub(crate) fn web_sys_warn(s: &str) {
    console_warn(s);
}
