//! Control packets: the handshake, rejections and "no such connection" replies.
//!
//! A control packet's first byte is its type (below 0x80, so the data flag is clear). All
//! multi-byte integers are little-endian. The client's handshake packets (challenge request and
//! connect request) are padded with zeros to [`HANDSHAKE_PADDED_LEN`] and a server refuses
//! shorter ones, so every server reply is smaller than the request that caused it: a spoofed
//! source address cannot be used to amplify traffic.

use super::{Reader, WireError, Writer, varint};

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Minimum size of client handshake packets. 512 bytes, as GNS
/// (`k_cbSteamNetworkingMinPaddedPacketSize`): bigger than any server reply (a connect-OK with
/// a certificate and key share is under 400 bytes), small enough for any path MTU.
pub const HANDSHAKE_PADDED_LEN: usize = 512;
/// Largest crypto blob a handshake packet may carry. The server's reply must stay below the
/// padded request size, so its blob is further limited by the encoder.
pub const MAX_CRYPTO_BLOB: usize = 440;

/// Control packet types (the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ControlType {
    /// Client → server: start a handshake (padded).
    ChallengeRequest = 1,
    /// Server → client: a stateless cookie.
    ChallengeReply = 2,
    /// Client → server: cookie plus the client's crypto offer (padded).
    ConnectRequest = 3,
    /// Server → client: accepted, with the server's connection id and crypto answer.
    ConnectOk = 4,
    /// Either way: the connection is closed (before keys exist, or on unencrypted links).
    Closed = 5,
    /// Either way: no connection with that id exists here.
    NoConnection = 6,
}

/// A parsed control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRepr<'a> {
    /// Client → server, first packet.
    ChallengeRequest {
        /// Protocol version the client speaks.
        version: u8,
        /// The client's connection id.
        client_conn_id: u32,
        /// Client's clock, echoed for an RTT sample.
        timestamp: u64,
    },
    /// Server → client, carries the cookie. The server keeps no state.
    ChallengeReply {
        /// Server protocol version.
        version: u8,
        /// Echo of the client's id.
        client_conn_id: u32,
        /// The stateless cookie the client must return.
        cookie: u64,
        /// Echo of the client's timestamp.
        echo_timestamp: u64,
    },
    /// Client → server, proves the address and offers crypto.
    ConnectRequest {
        /// Protocol version the client speaks.
        version: u8,
        /// The client's connection id.
        client_conn_id: u32,
        /// The cookie from the challenge reply.
        cookie: u64,
        /// Client's clock, echoed for an RTT sample.
        timestamp: u64,
        /// Opaque crypto offer (key share, certificate, signature), empty when unencrypted.
        crypto: &'a [u8],
    },
    /// Server → client: the connection is accepted.
    ConnectOk {
        /// Server protocol version.
        version: u8,
        /// Echo of the client's id.
        client_conn_id: u32,
        /// The server's connection id.
        server_conn_id: u32,
        /// Echo of the client's timestamp.
        echo_timestamp: u64,
        /// How long the server held the request (µs), subtracted from the RTT sample.
        server_delay_us: u32,
        /// Opaque crypto answer.
        crypto: &'a [u8],
    },
    /// The connection is closed, with a reason.
    Closed {
        /// Recipient's connection id.
        to_conn_id: u32,
        /// Sender's connection id (0 if it never had one).
        from_conn_id: u32,
        /// End-reason code.
        reason: u32,
        /// Debug text, at most 128 bytes.
        debug: &'a [u8],
    },
    /// Nothing here by that id.
    NoConnection {
        /// Recipient's connection id.
        to_conn_id: u32,
        /// Sender's connection id.
        from_conn_id: u32,
    },
}

impl<'a> ControlRepr<'a> {
    /// Parses a control packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let ty = r.u8()?;
        let repr = match ty {
            1 => {
                if buf.len() < HANDSHAKE_PADDED_LEN {
                    return Err(WireError::NotPadded);
                }
                let version = r.u8()?;
                ControlRepr::ChallengeRequest {
                    version,
                    client_conn_id: nonzero(r.u32()?)?,
                    timestamp: r.u64()?,
                }
            }
            2 => ControlRepr::ChallengeReply {
                version: r.u8()?,
                client_conn_id: nonzero(r.u32()?)?,
                cookie: r.u64()?,
                echo_timestamp: r.u64()?,
            },
            3 => {
                if buf.len() < HANDSHAKE_PADDED_LEN {
                    return Err(WireError::NotPadded);
                }
                let version = r.u8()?;
                let client_conn_id = nonzero(r.u32()?)?;
                let cookie = r.u64()?;
                let timestamp = r.u64()?;
                let n = r.varint_len(MAX_CRYPTO_BLOB)?;
                ControlRepr::ConnectRequest {
                    version,
                    client_conn_id,
                    cookie,
                    timestamp,
                    crypto: r.bytes(n)?,
                }
            }
            4 => {
                let version = r.u8()?;
                let client_conn_id = nonzero(r.u32()?)?;
                let server_conn_id = nonzero(r.u32()?)?;
                let echo_timestamp = r.u64()?;
                let server_delay_us = r.u32()?;
                let n = r.varint_len(MAX_CRYPTO_BLOB)?;
                ControlRepr::ConnectOk {
                    version,
                    client_conn_id,
                    server_conn_id,
                    echo_timestamp,
                    server_delay_us,
                    crypto: r.bytes(n)?,
                }
            }
            5 => {
                let to_conn_id = r.u32()?;
                let from_conn_id = r.u32()?;
                let reason = r.u32()?;
                let n = r.varint_len(super::MAX_DEBUG_LEN)?;
                ControlRepr::Closed { to_conn_id, from_conn_id, reason, debug: r.bytes(n)? }
            }
            6 => ControlRepr::NoConnection { to_conn_id: r.u32()?, from_conn_id: r.u32()? },
            _ => return Err(WireError::UnknownType),
        };
        Ok(repr)
    }

    /// The packet's type.
    pub fn ty(&self) -> ControlType {
        match self {
            ControlRepr::ChallengeRequest { .. } => ControlType::ChallengeRequest,
            ControlRepr::ChallengeReply { .. } => ControlType::ChallengeReply,
            ControlRepr::ConnectRequest { .. } => ControlType::ConnectRequest,
            ControlRepr::ConnectOk { .. } => ControlType::ConnectOk,
            ControlRepr::Closed { .. } => ControlType::Closed,
            ControlRepr::NoConnection { .. } => ControlType::NoConnection,
        }
    }

    /// Bytes before padding.
    fn unpadded_len(&self) -> usize {
        1 + match self {
            ControlRepr::ChallengeRequest { .. } => 1 + 4 + 8,
            ControlRepr::ChallengeReply { .. } => 1 + 4 + 8 + 8,
            ControlRepr::ConnectRequest { crypto, .. } => {
                1 + 4 + 8 + 8 + varint::len(crypto.len() as u64) + crypto.len()
            }
            ControlRepr::ConnectOk { crypto, .. } => {
                1 + 4 + 4 + 8 + 4 + varint::len(crypto.len() as u64) + crypto.len()
            }
            ControlRepr::Closed { debug, .. } => {
                4 + 4 + 4 + varint::len(debug.len() as u64) + debug.len()
            }
            ControlRepr::NoConnection { .. } => 4 + 4,
        }
    }

    /// Size on the wire, padding included.
    pub fn buffer_len(&self) -> usize {
        let n = self.unpadded_len();
        match self {
            ControlRepr::ChallengeRequest { .. } | ControlRepr::ConnectRequest { .. } => {
                n.max(HANDSHAKE_PADDED_LEN)
            }
            _ => n,
        }
    }

    /// Writes the packet (with padding) and returns its length, or `None` if `buf` is short.
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let mut w = Writer::new(buf);
        w.u8(self.ty() as u8)?;
        match *self {
            ControlRepr::ChallengeRequest { version, client_conn_id, timestamp } => {
                w.u8(version)?;
                w.u32(client_conn_id)?;
                w.u64(timestamp)?;
            }
            ControlRepr::ChallengeReply { version, client_conn_id, cookie, echo_timestamp } => {
                w.u8(version)?;
                w.u32(client_conn_id)?;
                w.u64(cookie)?;
                w.u64(echo_timestamp)?;
            }
            ControlRepr::ConnectRequest { version, client_conn_id, cookie, timestamp, crypto } => {
                w.u8(version)?;
                w.u32(client_conn_id)?;
                w.u64(cookie)?;
                w.u64(timestamp)?;
                w.varint(crypto.len() as u64)?;
                w.bytes(crypto)?;
            }
            ControlRepr::ConnectOk {
                version,
                client_conn_id,
                server_conn_id,
                echo_timestamp,
                server_delay_us,
                crypto,
            } => {
                w.u8(version)?;
                w.u32(client_conn_id)?;
                w.u32(server_conn_id)?;
                w.u64(echo_timestamp)?;
                w.u32(server_delay_us)?;
                w.varint(crypto.len() as u64)?;
                w.bytes(crypto)?;
            }
            ControlRepr::Closed { to_conn_id, from_conn_id, reason, debug } => {
                w.u32(to_conn_id)?;
                w.u32(from_conn_id)?;
                w.u32(reason)?;
                w.varint(debug.len() as u64)?;
                w.bytes(debug)?;
            }
            ControlRepr::NoConnection { to_conn_id, from_conn_id } => {
                w.u32(to_conn_id)?;
                w.u32(from_conn_id)?;
            }
        }
        let pad = self.buffer_len() - w.len();
        w.zeros(pad)?;
        Some(w.len())
    }
}

fn nonzero(id: u32) -> Result<u32, WireError> {
    if id == 0 { Err(WireError::BadValue) } else { Ok(id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(repr: ControlRepr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n, repr.buffer_len());
        buf.truncate(n);
        assert_eq!(ControlRepr::parse(&buf).unwrap(), repr);
        buf
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn literals_both_ways() {
        let b = round_trip(ControlRepr::NoConnection {
            to_conn_id: 0x0403_0201,
            from_conn_id: 0x0807_0605,
        });
        assert_eq!(b, [6, 1, 2, 3, 4, 5, 6, 7, 8]);
        let b = round_trip(ControlRepr::Closed {
            to_conn_id: 1,
            from_conn_id: 2,
            reason: 1000,
            debug: b"bye",
        });
        assert_eq!(b, [5, 1, 0, 0, 0, 2, 0, 0, 0, 0xe8, 0x03, 0, 0, 3, b'b', b'y', b'e']);
        let b = round_trip(ControlRepr::ChallengeRequest {
            version: 1,
            client_conn_id: 7,
            timestamp: 9,
        });
        assert_eq!(b.len(), HANDSHAKE_PADDED_LEN);
        assert_eq!(&b[..14], &[1, 1, 7, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(b[14..].iter().all(|&x| x == 0));
        let b = round_trip(ControlRepr::ChallengeReply {
            version: 1,
            client_conn_id: 7,
            cookie: 0x1122,
            echo_timestamp: 9,
        });
        assert_eq!(b, [2, 1, 7, 0, 0, 0, 0x22, 0x11, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        round_trip(ControlRepr::ConnectRequest {
            version: 1,
            client_conn_id: 7,
            cookie: 3,
            timestamp: 4,
            crypto: &[9; 100],
        });
        round_trip(ControlRepr::ConnectOk {
            version: 1,
            client_conn_id: 7,
            server_conn_id: 8,
            echo_timestamp: 4,
            server_delay_us: 100,
            crypto: &[1, 2, 3],
        });
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rejects_unpadded_and_bad() {
        let mut buf = vec![0u8; 600];
        let n = ControlRepr::ChallengeRequest { version: 1, client_conn_id: 7, timestamp: 9 }
            .emit(&mut buf)
            .unwrap();
        assert_eq!(ControlRepr::parse(&buf[..n - 1]), Err(WireError::NotPadded));
        assert_eq!(ControlRepr::parse(&[9]), Err(WireError::UnknownType));
        assert_eq!(ControlRepr::parse(&[6, 1, 2]), Err(WireError::Truncated));
        assert_eq!(ControlRepr::parse(&[2, 1, 0, 0, 0, 0]), Err(WireError::BadValue));
        // A crypto length beyond the limit is refused before any read of that many bytes.
        let mut bad = vec![3u8, 1, 7, 0, 0, 0];
        bad.extend_from_slice(&[0; 16]);
        bad.extend_from_slice(&[0xff, 0xff, 0x03]);
        bad.resize(HANDSHAKE_PADDED_LEN, 0);
        assert_eq!(ControlRepr::parse(&bad), Err(WireError::BadLength));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn server_reply_never_larger_than_request() {
        let blob = [0u8; MAX_CRYPTO_BLOB];
        let req = ControlRepr::ConnectRequest {
            version: 1,
            client_conn_id: 1,
            cookie: 2,
            timestamp: 3,
            crypto: &[],
        };
        let ok = ControlRepr::ConnectOk {
            version: 1,
            client_conn_id: 1,
            server_conn_id: 2,
            echo_timestamp: 3,
            server_delay_us: 4,
            crypto: &blob,
        };
        assert!(ok.buffer_len() <= req.buffer_len(), "{} > {}", ok.buffer_len(), req.buffer_len());
    }
}
