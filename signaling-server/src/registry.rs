//! Who is registered: identity -> the session that holds it.
//!
//! Invariants:
//! - An identity maps to at most one session. Registering it again replaces the entry and hands
//!   the old one back, so the caller can tell the stale session it was replaced.
//! - A session removes only its own entry ([`Registry::unregister`] checks the session id), so a
//!   stale session that ends after its replacement registered leaves the new entry alone.
//! - The lock is held for map operations only, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::protocol::Identity;

/// What other sessions push into a session's queue.
pub(crate) enum Outbound {
    /// A serialized `signal` to write. The permit holds the message's bytes of the recipient's
    /// queue budget until it is written (or dropped).
    Relay { text: String, _permit: OwnedSemaphorePermit },
    /// Another session registered this session's identity.
    Replaced,
}

/// A registered session's mailbox.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) session: u64,
    pub(crate) tx: mpsc::UnboundedSender<Outbound>,
    /// Bytes of queue still free; see `Limits::max_queued_bytes`.
    pub(crate) budget: Arc<Semaphore>,
}

#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<Identity, Entry>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Identity, Entry>> {
        // Nothing panics while holding the lock, and the map stays consistent even if
        // something did, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `identity` to `entry` and returns the entry it replaced, if any.
    pub(crate) fn register(&self, identity: Identity, entry: Entry) -> Option<Entry> {
        self.lock().insert(identity, entry)
    }

    pub(crate) fn lookup(&self, identity: &Identity) -> Option<Entry> {
        self.lock().get(identity).cloned()
    }

    /// Removes `identity` if it still belongs to `session`.
    pub(crate) fn unregister(&self, identity: &Identity, session: u64) {
        let mut map = self.lock();
        if map.get(identity).is_some_and(|e| e.session == session) {
            map.remove(identity);
        }
    }

    /// Removes `identity` if it still belongs to `session`, and returns its entry.
    #[cfg(feature = "redis")]
    pub(crate) fn take_if(&self, identity: &Identity, session: u64) -> Option<Entry> {
        let mut map = self.lock();
        if map.get(identity).is_some_and(|e| e.session == session) {
            return map.remove(identity);
        }
        None
    }

    /// Every registration: (identity, session).
    #[cfg(feature = "redis")]
    pub(crate) fn sessions(&self) -> Vec<(Identity, u64)> {
        self.lock().iter().map(|(id, e)| (id.clone(), e.session)).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
