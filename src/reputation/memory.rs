//! The embedded reputation store: in-process, bounded, decaying.
//!
//! A std `Mutex` around a `HashMap` is enough: each operation touches a handful of entries and
//! holds the lock for well under a microsecond, never across an `.await`. When the map is full,
//! the tenth of entries with the least (decayed) evidence is dropped in one sweep, so memory stays
//! bounded at `max_entries` and the sweep's cost is spread over many inserts.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{decay_factor, Identity, ReputationError, ReputationStore, StoreFuture, Tally};
use crate::comment::Label;

/// The map key of an identifier: its hash as a number (hashes are always 32 hex digits; a
/// malformed one, which the hasher never makes, falls back to a digest of the text).
fn key(id: &Identity) -> u128 {
    u128::from_str_radix(&id.hash, 16).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(id.hash.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        u128::from_le_bytes(b)
    })
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tally: Tally,
    updated: u64,
}

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    /// Keyed by the identifier's 128-bit HMAC (the hex of [`Identity::hash`] parsed back), which
    /// takes a third of the memory of the hex string.
    entries: Mutex<HashMap<u128, Entry>>,
    max_entries: usize,
    half_life: u64,
}

impl MemoryStore {
    /// A store holding at most `max_entries` identifiers, decaying with `half_life` seconds.
    pub fn new(max_entries: usize, half_life: u64) -> MemoryStore {
        MemoryStore {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(16),
            half_life,
        }
    }

    /// Identifiers currently held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored keys (hashed identifiers, hex), for tests that check nothing is kept in the
    /// clear.
    pub fn keys(&self) -> Vec<String> {
        self.entries
            .lock()
            .map(|m| m.keys().map(|k| format!("{k:032x}")).collect())
            .unwrap_or_default()
    }

    fn lookup_now(&self, ids: &[Identity], now: u64) -> Result<Vec<Tally>, ReputationError> {
        let map = self
            .entries
            .lock()
            .map_err(|_| ReputationError::Backend("embedded store lock poisoned".into()))?;
        Ok(ids
            .iter()
            .map(|id| {
                map.get(&key(id))
                    .map(|e| e.tally.decayed(e.updated, now, self.half_life))
                    .unwrap_or_default()
            })
            .collect())
    }

    fn record_now(
        &self,
        ids: &[Identity],
        label: Label,
        weight: f64,
        now: u64,
    ) -> Result<(), ReputationError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| ReputationError::Backend("embedded store lock poisoned".into()))?;
        if map.len() + ids.len() > self.max_entries {
            self.evict(&mut map, now);
        }
        for id in ids {
            let e = map.entry(key(id)).or_insert(Entry {
                tally: Tally::default(),
                updated: now,
            });
            let mut t = e.tally.decayed(e.updated, now, self.half_life);
            match label {
                Label::Spam => t.spam += weight,
                Label::Ham => t.ham += weight,
            }
            e.tally = t;
            e.updated = e.updated.max(now);
        }
        Ok(())
    }

    fn evict(&self, map: &mut HashMap<u128, Entry>, now: u64) {
        let mut weights: Vec<(f64, u128)> = map
            .iter()
            .map(|(k, e)| {
                let f = decay_factor(e.updated, now, self.half_life);
                ((e.tally.spam + e.tally.ham) * f, *k)
            })
            .collect();
        let drop = (self.max_entries / 10).max(1).min(weights.len());
        weights.select_nth_unstable_by(drop.saturating_sub(1), |a, b| a.0.total_cmp(&b.0));
        for (_, k) in weights.into_iter().take(drop) {
            map.remove(&k);
        }
    }
}

impl ReputationStore for MemoryStore {
    fn lookup<'a>(&'a self, ids: &'a [Identity], now: u64) -> StoreFuture<'a, Vec<Tally>> {
        Box::pin(async move { self.lookup_now(ids, now) })
    }

    fn record<'a>(
        &'a self,
        ids: &'a [Identity],
        label: Label,
        weight: f64,
        now: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.record_now(ids, label, weight, now) })
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reputation::{IdentityHasher, IdentityKind};

    fn ids(n: usize) -> Vec<Identity> {
        let h = IdentityHasher::new(b"k");
        (0..n)
            .map(|i| h.identity(IdentityKind::Ip, &format!("10.0.0.{i}")))
            .collect()
    }

    #[test]
    fn records_decay_and_stay_bounded() {
        let store = MemoryStore::new(100, 100);
        let one = ids(1);
        store.record_now(&one, Label::Spam, 1.0, 1000).unwrap();
        store.record_now(&one, Label::Spam, 1.0, 1000).unwrap();
        store.record_now(&one, Label::Ham, 1.0, 1100).unwrap();
        let t = store.lookup_now(&one, 1100).unwrap()[0];
        assert!(
            (t.spam - 1.0).abs() < 1e-9 && (t.ham - 1.0).abs() < 1e-9,
            "{t:?}"
        );
        let t = store.lookup_now(&one, 1200).unwrap()[0];
        assert!((t.spam - 0.5).abs() < 1e-9, "{t:?}");

        let many = ids(1000);
        for chunk in many.chunks(10) {
            store.record_now(chunk, Label::Ham, 1.0, 1300).unwrap();
        }
        assert!(store.len() <= 100, "{}", store.len());
    }
}
