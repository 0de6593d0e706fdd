//! The browser globals the driver needs: the clock, timers and entropy.
//!
//! They are bound as globals (`performance.now`, `setTimeout`, `crypto.getRandomValues`)
//! rather than through web-sys's `window()`, so the same module runs in a page, in a worker
//! and in Node.js (the package's own tests load it there).

use crate::prelude::*;
use js_sys::{Function, Promise};
use lanewire_core::Instant;
use wasm_bindgen::prelude::*;
use web_sys::MessageChannel;

use crate::error::{Error, ErrorCode};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

// `settle` settles a promise into one callback: `f(true, value)` or `f(false, error)`. One
// closure that runs once (and frees itself), where `then` with two closures would leak the one
// never called.
//
// `relayed` says whether the ICE route of a `getStats()` report goes through a TURN relay:
// either candidate of the selected pair (the transport's `selectedCandidatePairId`, else the
// nominated succeeded pair) is of type `relay`; `undefined` if the report does not say. A walk
// over JavaScript dictionaries, written in JavaScript: the same walk in Rust, a property read
// and a string copy at a time, was 2.7 KB of the .wasm.
#[wasm_bindgen(inline_js = "
export function settle(p, f) { p.then((v) => f(true, v), (e) => f(false, e)); }
export function relayed(report) {
  const stats = [...report.values()];
  const id = stats.find((s) => s.type === 'transport')?.selectedCandidatePairId;
  const pair = stats.find((s) => s.type === 'candidate-pair'
    && (id ? s.id === id : s.state === 'succeeded' && s.nominated === true));
  if (!pair) return undefined;
  const relay = (cid) => stats.some((s) => s.id === cid && s.candidateType === 'relay'
    && (s.type === 'local-candidate' || s.type === 'remote-candidate'));
  return relay(pair.localCandidateId) || relay(pair.remoteCandidateId);
}")]
extern "C" {
    fn settle(p: &Promise, f: &JsValue);
    /// See above.
    pub(crate) fn relayed(report: &JsValue) -> Option<bool>;
}

/// What a promise settled to, given to the callback of [`then`].
pub(crate) type Settled = Result<JsValue, JsValue>;

/// Calls `f` with what `p` settles to, in the promise's reaction task (the driver's
/// replacement for `async`: no executor or futures in the .wasm).
pub(crate) fn then(p: &Promise, f: impl FnOnce(Settled) + 'static) {
    then_boxed(p, Box::new(f));
}

/// [`then`]'s body, compiled once rather than once per callback.
fn then_boxed(p: &Promise, f: Box<dyn FnOnce(Settled)>) {
    let cb = Closure::once_into_js(move |ok: bool, v: JsValue| f(if ok { Ok(v) } else { Err(v) }));
    settle(p, &cb);
}

/// Sends panic messages to `console.error`: a panic is a bug, and without this the browser
/// reports only "unreachable executed". With `std` (Rust programs), as a panic hook.
#[cfg(feature = "std")]
pub(crate) fn install_panic_hook() {
    // An atomic flag rather than `std::sync::Once` (and its poisoning code): wasm32 here has
    // one thread.
    static INSTALLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !INSTALLED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        std::panic::set_hook(Box::new(|info| console_error(&format!("lanewire panicked: {info}"))));
    }
}

/// Without `std` the crate's panic handler reports the panic itself (see `lib.rs`).
#[cfg(not(feature = "std"))]
pub(crate) fn install_panic_hook() {}

/// The panic handler's report without `std`: the location, and the message when it is a
/// plain string (formatting its arguments would bring the formatting code back).
#[cfg(not(feature = "std"))]
pub(crate) fn report_panic(info: &core::panic::PanicInfo<'_>) {
    let mut text = String::from("lanewire panicked");
    if let Some(l) = info.location() {
        text.push_str(" at ");
        text.push_str(l.file());
        text.push(':');
        text.push_str(&crate::error::num_text(f64::from(l.line())));
    }
    if let Some(m) = info.message().as_str() {
        text.push_str(": ");
        text.push_str(m);
    }
    console_error(&text);
}

/// Whether `n` is a whole number, for `|n| < 2^63` (`f64::fract` is not in `core`); every
/// caller also checks a range far inside that. NaN and infinities are not.
pub(crate) fn is_whole(n: f64) -> bool {
    (n as i64) as f64 == n
}

/// The core's clock: microseconds since this instance was created, never going backwards.
#[derive(Debug)]
pub(crate) struct Clock {
    origin_ms: f64,
    last: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock { origin_ms: performance_now(), last: Instant::ZERO }
    }

    pub(crate) fn now(&mut self) -> Instant {
        let micros = ((performance_now() - self.origin_ms) * 1000.0).max(0.0) as u64;
        // performance.now() is monotonic; the max only guards the float conversion.
        self.last = self.last.max(Instant::from_micros(micros));
        self.last
    }
}

/// 32 bytes of entropy for the endpoint's seed, from `crypto.getRandomValues`.
pub(crate) fn random_seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    get_random_values(&mut seed)
        .map_err(|e| Error::from_js(ErrorCode::Unsupported, "crypto.getRandomValues", &e))?;
    Ok(seed)
}

/// The driver's wake-up: one `setTimeout`, re-armed whenever an earlier wake-up is needed.
///
/// Browsers clamp timers set from inside a timer callback to 4 ms once such calls nest five
/// deep (HTML's timer nesting rule), and the core's pacer needs wake-ups every fraction of a
/// millisecond at high send rates. So a short wait asked for from inside the timer callback
/// first hops through a `MessageChannel` message (a fresh task, nesting level zero) and is
/// armed from there.
///
/// Re-arming costs about a microsecond, but the driver re-arms after every datagram, so a
/// later deadline than the one armed keeps the armed timer (it fires early, harmlessly, and
/// the handler arms the next one).
pub(crate) struct Timer {
    callback: Closure<dyn FnMut()>,
    hop: MessageChannel,
    _on_hop: Closure<dyn FnMut()>,
    armed: Option<(Instant, JsValue)>,
    hopping: bool,
    in_timer_task: bool,
}

/// Waits shorter than this, asked for inside a timer callback, hop first (the clamp is 4 ms).
const CLAMPED_BELOW_MS: u64 = 5;

impl Timer {
    /// `callback` runs when the timer fires, `on_hop` when a hop arrives: both should run the
    /// core's timers and pump (which re-arms).
    pub(crate) fn new(
        hop: MessageChannel,
        callback: Closure<dyn FnMut()>,
        on_hop: Closure<dyn FnMut()>,
    ) -> Timer {
        hop.port1().set_onmessage(Some(on_hop.as_ref().unchecked_ref()));
        Timer { callback, hop, _on_hop: on_hop, armed: None, hopping: false, in_timer_task: false }
    }

    /// The channel a [`Timer`] hops through.
    pub(crate) fn channel() -> Result<MessageChannel, Error> {
        MessageChannel::new()
            .map_err(|e| Error::from_js(ErrorCode::Unsupported, "new MessageChannel", &e))
    }

    /// Makes sure a callback runs no later than `due` (`None`: nothing to wait for).
    pub(crate) fn arm(&mut self, now: Instant, due: Option<Instant>) {
        let in_timer_task = core::mem::replace(&mut self.in_timer_task, false);
        let Some(due) = due else { return };
        if self.armed.as_ref().is_some_and(|(at, _)| *at <= due) {
            return;
        }
        // Whole milliseconds, rounded up so the core never wakes before its deadline (in u64:
        // `Duration::as_micros` is a u128, whose division is a libcall).
        let ms = due.as_micros().saturating_sub(now.as_micros()).div_ceil(1000);
        if in_timer_task && ms < CLAMPED_BELOW_MS {
            if !self.hopping {
                self.hopping = true;
                let _ = self.hop.port2().post_message(&JsValue::NULL);
            }
            return;
        }
        if let Some((_, id)) = self.armed.take() {
            clear_timeout(&id);
        }
        let id = set_timeout(self.callback.as_ref().unchecked_ref(), ms as f64);
        self.armed = Some((due, id));
    }

    /// The timer callback runs: the armed timer is spent, and waits armed now are nested.
    pub(crate) fn fired(&mut self) {
        self.armed = None;
        self.in_timer_task = true;
    }

    /// A hop arrived: waits armed now are not nested.
    pub(crate) fn hopped(&mut self) {
        self.hopping = false;
    }
}

impl Timer {
    /// Stops for good: nothing armed, the hop channel closed (an open port with a handler
    /// keeps Node.js's event loop alive).
    pub(crate) fn close(&mut self) {
        if let Some((_, id)) = self.armed.take() {
            clear_timeout(&id);
        }
        self.hop.port1().set_onmessage(None);
        self.hop.port1().close();
        self.hop.port2().close();
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs `f` once after `ms` milliseconds unless the returned guard is dropped first.
pub(crate) struct Once {
    _callback: Closure<dyn FnMut()>,
    id: JsValue,
}

impl Once {
    pub(crate) fn after(ms: f64, f: impl FnOnce() + 'static) -> Once {
        let mut f = Some(f);
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = f.take() {
                f();
            }
        });
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Once { _callback: callback, id }
    }
}

impl Drop for Once {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
