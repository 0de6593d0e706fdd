//! The per-IP connection cap (`Limits::max_connections_per_ip`), enforced at accept.
//!
//! Counts open TCP connections per source: an IPv4 address, or an IPv6 /64 network (one host
//! usually gets a whole /64, so counting single IPv6 addresses would cap nothing). An
//! IPv4-mapped IPv6 address counts as its IPv4 address. The map holds only sources with open
//! connections, so it is bounded by the number of open sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The counted source of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4([u8; 4]),
    /// The first 64 bits.
    V6([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Source::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

/// Open connections per source.
#[derive(Default)]
pub(crate) struct IpLimiter {
    open: Mutex<HashMap<Source, usize>>,
}

/// One open connection; dropping it frees its place.
pub(crate) struct IpSlot {
    limiter: Arc<IpLimiter>,
    source: Source,
}

impl IpLimiter {
    fn lock(&self) -> MutexGuard<'_, HashMap<Source, usize>> {
        // Counter updates cannot leave the map inconsistent.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a connection from `ip` if fewer than `max` are open from its source.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let source = Source::from(ip);
        let mut open = self.lock();
        let n = open.entry(source).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot { limiter: Arc::clone(self), source })
    }

    /// Connections open from the source of `ip`.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        self.lock().get(&Source::from(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(n) = open.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_source_and_frees_on_drop() {
        let limiter = Arc::new(IpLimiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = limiter.try_acquire(a, 2).expect("first");
        let _s2 = limiter.try_acquire(a, 2).expect("second");
        assert!(limiter.try_acquire(a, 2).is_none());
        let _other = limiter.try_acquire(b, 2).expect("another address");
        drop(s1);
        let _s3 = limiter.try_acquire(a, 2).expect("freed");
        assert_eq!(limiter.open(a), 2);
    }

    #[test]
    fn the_map_empties() {
        let limiter = Arc::new(IpLimiter::default());
        let slots: Vec<_> = (0..10u8)
            .map(|i| limiter.try_acquire(IpAddr::from([198, 51, 100, i]), 1).expect("slot"))
            .collect();
        drop(slots);
        assert!(limiter.lock().is_empty());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limiter = Arc::new(IpLimiter::default());
        let _x = limiter.try_acquire("2001:db8:1:2::1".parse().unwrap(), 1).expect("slot");
        assert!(limiter.try_acquire("2001:db8:1:2::99".parse().unwrap(), 1).is_none());
        assert!(limiter.try_acquire("2001:db8:1:3::1".parse().unwrap(), 1).is_some());
        let _y = limiter.try_acquire("192.0.2.7".parse().unwrap(), 1).expect("v4");
        assert!(limiter.try_acquire("::ffff:192.0.2.7".parse().unwrap(), 1).is_none());
    }
}
