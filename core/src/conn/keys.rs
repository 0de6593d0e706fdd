//! In-band key updates (in the manner of RFC 9001 section 6): an AEAD key may protect at most
//! [`Cipher::packet_limit`](crate::crypto::Cipher::packet_limit) packets, so before a key
//! reaches three quarters of it the sender moves to the next generation (derived from an update
//! secret, `crypto::kx`) and flips the key phase bit of the data packet header. The receiver
//! sees the flipped bit, opens the packet with the next generation of its receiving key, and
//! installs it; it keeps the previous key for packets of the old phase that arrive late, and
//! moves its own sending key on if it has not yet. No handshake, no pause: packets keep
//! flowing through the update, in both directions.
//!
//! A sender updates again only after a packet sealed with its current key was acknowledged (the
//! peer has it). The limit stays enforced both ways: a key that sealed `limit` packets (our
//! update was never confirmed) or opened `limit` packets (the peer never updated) ends the
//! connection instead of weakening the AEAD.

use super::{Connection, Protection};
use crate::crypto::PacketKey;

/// Key-update state of a connection (without the `crypto` feature only the phase bit, always
/// clear, and the counters of the detailed status are read).
#[derive(Debug)]
#[cfg_attr(not(feature = "crypto"), allow(dead_code))]
pub(crate) struct KeyUpdate {
    /// Our sending key's phase bit, and the first packet number sealed with it.
    send_phase: bool,
    send_start: u64,
    /// A packet sealed with the current sending key was acknowledged: we may update again.
    confirmed: bool,
    /// The receiving key's phase bit, the first packet number it opened (`None`: the first
    /// generation), and how many packets it opened.
    recv_phase: bool,
    recv_start: Option<u64>,
    recv_count: u64,
    /// The previous receiving key, for late packets of the old phase.
    prev_recv: Option<PacketKey>,
    /// Packets a key protects before we update it (`u64::MAX`: never, not even in answer to
    /// the peer's update, as an old or broken peer would), and the most it may protect.
    pub(crate) interval: u64,
    pub(crate) limit: u64,
    /// Updates so far (ours and the peer's).
    pub(crate) updates: u64,
}

impl KeyUpdate {
    pub(crate) fn new(limit: u64) -> Self {
        KeyUpdate {
            send_phase: false,
            send_start: 0,
            confirmed: true,
            recv_phase: false,
            recv_start: None,
            recv_count: 0,
            prev_recv: None,
            interval: limit / 4 * 3,
            limit,
            updates: 0,
        }
    }

    /// The phase bit of the packets we send now.
    pub(crate) fn send_phase(&self) -> bool {
        self.send_phase
    }
}

/// Why a packet could not be opened or sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "crypto"), allow(dead_code))]
pub(crate) enum KeyError {
    /// It does not authenticate (or belongs to a generation we no longer have): drop it.
    Drop,
    /// A key reached its packet limit: the connection must end.
    Limit,
}

#[cfg(not(feature = "crypto"))]
impl<A: Clone> Connection<A> {
    /// Without the `crypto` feature the only cipher is the null one, which never updates: the
    /// packet opens as it is (or with the null key).
    pub(crate) fn open_packet(
        &mut self,
        pn: u64,
        _phase: bool,
        header_len: usize,
        datagram: &mut [u8],
    ) -> Result<usize, KeyError> {
        let (header, body) = datagram.split_at_mut(header_len);
        match &self.protection {
            Protection::Keys(k) => {
                k.recv.open_in_place(pn, header, body).map_err(|_| KeyError::Drop)
            }
            Protection::None => Ok(body.len()),
        }
    }

    pub(crate) fn prepare_seal(&mut self, _pn: u64) -> Result<(), KeyError> {
        Ok(())
    }

    pub(crate) fn keys_on_ack(&mut self, _largest: u64) {}

    #[cfg(feature = "sim")]
    pub(crate) fn set_key_limits(&mut self, interval: u64, limit: u64) {
        self.key_update.interval = interval;
        self.key_update.limit = limit;
    }
}

#[cfg(feature = "crypto")]
impl<A: Clone> Connection<A> {
    /// Lowers the key limits (tests: a real limit is 2^28 packets).
    #[cfg(feature = "sim")]
    pub(crate) fn set_key_limits(&mut self, interval: u64, limit: u64) {
        self.key_update.interval = interval;
        self.key_update.limit = limit;
    }

    /// Opens packet `pn` with the key its phase bit names; returns the payload length.
    pub(crate) fn open_packet(
        &mut self,
        pn: u64,
        phase: bool,
        header_len: usize,
        datagram: &mut [u8],
    ) -> Result<usize, KeyError> {
        let Protection::Keys(k) = &mut self.protection else {
            return Ok(datagram.len() - header_len);
        };
        let (header, body) = datagram.split_at_mut(header_len);
        let ku = &mut self.key_update;
        if phase == ku.recv_phase {
            if ku.recv_count >= ku.limit {
                return Err(KeyError::Limit);
            }
            let n = k.recv.open_in_place(pn, header, body).map_err(|_| KeyError::Drop)?;
            ku.recv_count += 1;
            return Ok(n);
        }
        if ku.recv_start.is_some_and(|start| pn < start) {
            // A late packet of the previous phase.
            let prev = ku.prev_recv.as_ref().ok_or(KeyError::Drop)?;
            return prev.open_in_place(pn, header, body).map_err(|_| KeyError::Drop);
        }
        // The peer moved to the next generation.
        let (n, old) = k.open_next_generation(pn, header, body).ok_or(KeyError::Drop)?;
        ku.prev_recv = Some(old);
        ku.recv_phase = phase;
        ku.recv_start = Some(pn);
        ku.recv_count = 1;
        ku.updates += 1;
        if ku.send_phase != phase && ku.interval != u64::MAX && k.update_send() {
            // Answer in kind: our next packets use the next generation too.
            ku.send_phase = phase;
            ku.send_start = self.sent.next_pn;
            ku.confirmed = false;
        }
        Ok(n)
    }

    /// Before sealing packet `pn`: updates the sending key when it is due, and refuses when the
    /// key is at its limit.
    pub(crate) fn prepare_seal(&mut self, pn: u64) -> Result<(), KeyError> {
        let Protection::Keys(k) = &mut self.protection else { return Ok(()) };
        let ku = &mut self.key_update;
        let used = pn - ku.send_start;
        if used >= ku.interval && ku.confirmed && k.update_send() {
            ku.send_phase = !ku.send_phase;
            ku.send_start = pn;
            ku.confirmed = false;
            ku.updates += 1;
            return Ok(());
        }
        if used >= ku.limit { Err(KeyError::Limit) } else { Ok(()) }
    }

    /// The peer acknowledged packets up to `largest`.
    pub(crate) fn keys_on_ack(&mut self, largest: u64) {
        if largest >= self.key_update.send_start {
            self.key_update.confirmed = true;
        }
    }
}
