//! Text without `core::fmt`: the core's messages (end reasons' debug texts, connection
//! descriptions, the detailed status) are built with [`text!`](crate::text!) and [`Text`],
//! which append to a `String` directly.
//!
//! `core::fmt` is a few KB of code (the formatting state machine, padding, `Debug`
//! builders) that a browser module pays for as soon as one `format!` is reachable; native
//! programs have it anyway. The core's `Display` impls are written on top of [`Text`], so
//! natively `{}` prints the same text.
//!
//! ```
//! use lanewire_core::text;
//! let port = 27015u16;
//! assert_eq!(text!("listening on port ", port, ", ", -3i32, " left"), "listening on port 27015, -3 left");
//! ```

use crate::prelude::*;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[doc(hidden)]
pub use alloc::string::String as TextString;

/// A value that appends its text form to a `String`.
pub trait Text {
    /// Appends the text to `out`.
    fn push_to(&self, out: &mut String);
}

impl Text for str {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Text for String {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Text for char {
    fn push_to(&self, out: &mut String) {
        out.push(*self);
    }
}

impl<T: Text + ?Sized> Text for &T {
    fn push_to(&self, out: &mut String) {
        (**self).push_to(out);
    }
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Appends `n` in decimal, with `-` when negative.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
pub fn push_u64_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = String::new();
    push_u64(&mut digits, n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Text for $t {
            fn push_to(&self, out: &mut String) {
                push_u64(out, *self as u64);
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Text for $t {
            fn push_to(&self, out: &mut String) {
                push_i64(out, *self as i64);
            }
        }
    )*};
}
signed!(i8, i16, i32, i64, isize);

impl Text for Ipv4Addr {
    fn push_to(&self, out: &mut String) {
        for (i, b) in self.octets().iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            push_u64(out, u64::from(*b));
        }
    }
}

/// As `Ipv6Addr`'s `Display`: `::ffff:a.b.c.d` for IPv4-mapped addresses, otherwise lowercase
/// hex groups with the first longest run of two or more zero groups as `::`.
impl Text for Ipv6Addr {
    fn push_to(&self, out: &mut String) {
        if let Some(v4) = self.to_ipv4_mapped() {
            out.push_str("::ffff:");
            return v4.push_to(out);
        }
        let segments = self.segments();
        let (mut best, mut best_len, mut run) = (0, 0, 0);
        for (i, &s) in segments.iter().enumerate() {
            run = if s == 0 { run + 1 } else { 0 };
            if run > best_len {
                (best, best_len) = (i + 1 - run, run);
            }
        }
        let list = |out: &mut String, part: &[u16]| {
            for (i, &s) in part.iter().enumerate() {
                if i > 0 {
                    out.push(':');
                }
                let mut started = false;
                for shift in [12, 8, 4, 0] {
                    let d = (s >> shift) & 0xf;
                    if d != 0 || started || shift == 0 {
                        started = true;
                        out.push(char::from(b"0123456789abcdef"[usize::from(d)]));
                    }
                }
            }
        };
        if best_len > 1 {
            list(out, &segments[..best]);
            out.push_str("::");
            list(out, &segments[best + best_len..]);
        } else {
            list(out, &segments);
        }
    }
}

impl Text for IpAddr {
    fn push_to(&self, out: &mut String) {
        match self {
            IpAddr::V4(a) => a.push_to(out),
            IpAddr::V6(a) => a.push_to(out),
        }
    }
}

/// As `SocketAddr`'s `Display`: `a.b.c.d:port`, `[v6]:port` or `[v6%scope]:port`.
impl Text for SocketAddr {
    fn push_to(&self, out: &mut String) {
        match self {
            SocketAddr::V4(a) => a.ip().push_to(out),
            SocketAddr::V6(a) => {
                out.push('[');
                a.ip().push_to(out);
                if a.scope_id() != 0 {
                    out.push('%');
                    push_u64(out, u64::from(a.scope_id()));
                }
                out.push(']');
            }
        }
        out.push(':');
        push_u64(out, u64::from(self.port()));
    }
}

/// Concatenates the text of each argument (anything [`Text`]: strings, integers, addresses,
/// identities, handles, end reasons) into a new `String`, without `core::fmt`.
#[macro_export]
macro_rules! text {
    ($($part:expr),* $(,)?) => {{
        let mut out = $crate::text::TextString::new();
        $( $crate::text::Text::push_to(&$part, &mut out); )*
        out
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn as_display_prints() {
        for n in [0u64, 7, 10, 99, 1000, 65535, u64::MAX] {
            assert_eq!(crate::text!(n), n.to_string());
        }
        for n in [0i64, -1, -10, 42, i64::MIN, i64::MAX] {
            assert_eq!(crate::text!(n), n.to_string());
        }
        let mut s = String::new();
        push_u64_padded(&mut s, 42, 6);
        push_u64_padded(&mut s, 1234567, 3);
        assert_eq!(s, "0000421234567");
        let addrs = [
            "127.0.0.1:9",
            "[::1]:5000",
            "[::]:0",
            "[fe80::1%3]:9",
            "[2001:db8::8:800:200c:417a]:1",
            "[2001:db8:0:0:1:0:0:1]:2",
            "[1:0:0:2:0:0:0:3]:3",
            "[::ffff:1.2.3.4]:4",
            "[1:2:3:4:5:6:7:8]:65535",
            "[0:1::]:6",
        ];
        for a in addrs {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(crate::text!(a), a.to_string());
        }
        assert_eq!(crate::text!("a", 'b', String::from("c"), &&"d", 1u8, -2i8), "abcd1-2");
    }
}
