//! The one error type of every fallible call, and its JavaScript form: an `Error` object with
//! a `code` property.

use crate::prelude::*;
use core::fmt;
use lanewire_core::text;

use lanewire_core::config::{ConfigError, ConfigType};
use lanewire_core::{HandleError, SendError};
use lanewire_signaling::protocol::InvalidId;
use wasm_bindgen::{JsCast, JsValue};

/// What went wrong, as a code a program can match on. In JavaScript, the `code` property of
/// the thrown `Error` is the variant's name (`"LimitExceeded"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The handle does not name a live connection, listen socket or poll group.
    InvalidHandle,
    /// The object is in the wrong state for the call (accepting an outgoing connection,
    /// listening twice on one port...).
    InvalidState,
    /// A bad argument: an invalid identity, port, lane list or data type.
    InvalidParam,
    /// The connection has ended (closed by the peer or failed): read what is left, then close.
    NoConnection,
    /// The message is larger than 512 KiB.
    MessageTooBig,
    /// The send buffer is full; try again later. Reliable data is never dropped silently.
    LimitExceeded,
    /// A `NoDelay` message could not go out soon and was dropped, as asked.
    Ignored,
    /// The lane does not exist (configure lanes first).
    InvalidLane,
    /// A config value with an unknown name, the wrong type, out of range, or the wrong scope.
    BadConfig,
    /// The signaling server refused the token (missing, forged, or for another identity).
    BadToken,
    /// The signaling server says the token has expired.
    TokenExpired,
    /// The signaling server refused the registration or could not be reached.
    Signaling,
    /// The signaling server did not answer in time.
    Timeout,
    /// This environment lacks something Lanewire needs (WebSocket, RTCPeerConnection,
    /// crypto.getRandomValues).
    Unsupported,
    /// The instance is shut down, or its signaling connection is lost.
    Closed,
}

impl ErrorCode {
    /// The code's name, as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidHandle => "InvalidHandle",
            ErrorCode::InvalidState => "InvalidState",
            ErrorCode::InvalidParam => "InvalidParam",
            ErrorCode::NoConnection => "NoConnection",
            ErrorCode::MessageTooBig => "MessageTooBig",
            ErrorCode::LimitExceeded => "LimitExceeded",
            ErrorCode::Ignored => "Ignored",
            ErrorCode::InvalidLane => "InvalidLane",
            ErrorCode::BadConfig => "BadConfig",
            ErrorCode::BadToken => "BadToken",
            ErrorCode::TokenExpired => "TokenExpired",
            ErrorCode::Signaling => "Signaling",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::Unsupported => "Unsupported",
            ErrorCode::Closed => "Closed",
        }
    }
}

/// An error: a [`ErrorCode`] and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Wraps a value a JavaScript call threw: `context: <its message>`.
    pub(crate) fn from_js(code: ErrorCode, context: &str, value: &JsValue) -> Error {
        Error::new(code, text!(context, ": ", js_message(value)))
    }

    /// `code: message`, as `Display` prints it.
    pub fn text(&self) -> String {
        text!(self.code.as_str(), ": ", self.message)
    }
}

/// The text of an invalid identity or id, as its `Display` prints it.
pub(crate) fn invalid_id_text(e: InvalidId) -> String {
    match e {
        InvalidId::Empty => "is empty".into(),
        InvalidId::TooLong(max) => text!("is longer than ", max, " bytes"),
        InvalidId::NoKind => "is not of the form kind:data".into(),
        InvalidId::BadKind => "has a kind that is not 1-16 characters of [a-z0-9]".into(),
        InvalidId::BadChar => "contains a character that is not allowed".into(),
    }
}

/// `identity "<id>" <why>`.
pub(crate) fn bad_identity(identity: &str, e: InvalidId) -> String {
    text!("identity \"", identity, "\" ", invalid_id_text(e))
}

/// The message of a thrown JavaScript value (an `Error`'s message, or a thrown string).
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return e.message().into();
    }
    value.as_string().unwrap_or_else(|| "unknown JavaScript error".into())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl core::error::Error for Error {}

impl From<SendError> for Error {
    fn from(e: SendError) -> Error {
        let code = match e {
            SendError::InvalidHandle => ErrorCode::InvalidHandle,
            SendError::NoConnection => ErrorCode::NoConnection,
            SendError::MessageTooBig => ErrorCode::MessageTooBig,
            SendError::LimitExceeded => ErrorCode::LimitExceeded,
            SendError::Ignored => ErrorCode::Ignored,
            SendError::InvalidLane => ErrorCode::InvalidLane,
        };
        Error::new(code, e.message())
    }
}

impl From<HandleError> for Error {
    fn from(e: HandleError) -> Error {
        let code = match e {
            HandleError::InvalidHandle => ErrorCode::InvalidHandle,
            HandleError::InvalidState => ErrorCode::InvalidState,
            HandleError::InvalidParam => ErrorCode::InvalidParam,
        };
        Error::new(code, e.message())
    }
}

impl From<ConfigError> for Error {
    /// The same text as `ConfigError`'s `Display`, with numbers printed by JavaScript: the
    /// core's `Display` would pull Rust's float formatting (about 15 KB) into the .wasm.
    fn from(e: ConfigError) -> Error {
        let (code, message) = match e {
            ConfigError::InvalidHandle => (ErrorCode::InvalidHandle, "invalid handle".into()),
            ConfigError::UnknownName(n) => {
                (ErrorCode::BadConfig, text!("unknown config value \"", n, "\""))
            }
            ConfigError::WrongType { key, expected } => {
                let expected = match expected {
                    ConfigType::Int32 => "Int32",
                    ConfigType::Int64 => "Int64",
                    ConfigType::Float => "Float",
                    ConfigType::String => "String",
                };
                (ErrorCode::BadConfig, text!("config value ", key.name(), " takes ", expected))
            }
            ConfigError::OutOfRange { key, min, max } => (
                ErrorCode::BadConfig,
                text!(
                    "config value ",
                    key.name(),
                    " must be in [",
                    num_text(min),
                    ", ",
                    num_text(max),
                    "]"
                ),
            ),
            ConfigError::WrongScope(key) => (
                ErrorCode::BadConfig,
                text!("config value ", key.name(), " is global: set it on the endpoint"),
            ),
            ConfigError::Unparsable { key, text } => (
                ErrorCode::BadConfig,
                text!("config value ", key.name(), ": cannot parse \"", text, "\""),
            ),
        };
        Error::new(code, message)
    }
}

/// A number as JavaScript prints it (`String(n)`): Rust's float `Display` would pull its float
/// formatting (Grisu, Dragon4 and bignums, about 15 KB of wasm) into the package.
pub(crate) fn num_text(n: f64) -> String {
    js_sys::Number::from(n).to_string_with_radix(10).map(String::from).unwrap_or_default()
}

impl From<Error> for JsValue {
    /// A JavaScript `Error` named `LanewireError` with the message and a `code` property.
    fn from(e: Error) -> JsValue {
        let js = js_sys::Error::new(&e.message);
        js.set_name("LanewireError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&js, &"code".into(), &e.code.as_str().into());
        js.into()
    }
}
