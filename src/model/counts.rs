//! The count table: per-class feature counts and document counts, the sufficient statistics of
//! naive Bayes. Training and online learning are both "add counts"; everything the scorer needs
//! is derived from this table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::comment::Label;
use crate::text::FeatureId;

/// Feature ids are already FNV hashes, so the map only needs a cheap finaliser to spread FNV's
/// weaker low bits over the buckets, not a second full hash.
#[derive(Default, Clone, Copy)]
pub struct FeatureHasher(u64);

impl Hasher for FeatureHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = n ^ (n >> 29);
        self.0 = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map keyed by feature id.
pub type FeatureMap<V> = HashMap<FeatureId, V, BuildHasherDefault<FeatureHasher>>;

/// Per-class counts of one feature: `[ham, spam]`.
pub type ClassCounts = [u32; 2];

/// The sufficient statistics of a two-class naive Bayes model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountTable {
    /// Per feature, how often it was counted in ham and in spam.
    pub features: FeatureMap<ClassCounts>,
    /// Documents seen per class, `[ham, spam]`.
    pub docs: [u64; 2],
    /// Sum of all feature counts per class, `[ham, spam]`.
    pub totals: [u64; 2],
}

impl CountTable {
    /// Adds one document's features (already counted or deduplicated as the variant wants).
    pub fn add(&mut self, label: Label, features: &[FeatureId]) {
        self.add_times(label, features, 1);
    }

    /// Adds one labelled document's features as `times` documents (a weighted example).
    pub fn add_times(&mut self, label: Label, features: &[FeatureId], times: u32) {
        let c = label.index();
        self.docs[c] += u64::from(times);
        for &f in features {
            let entry = self.features.entry(f).or_insert([0, 0]);
            entry[c] = entry[c].saturating_add(times);
            self.totals[c] += u64::from(times);
        }
    }

    /// Number of distinct features (the vocabulary size of the multinomial model).
    pub fn vocabulary(&self) -> usize {
        self.features.len()
    }

    /// Counts of one feature, zero when unseen.
    pub fn get(&self, f: FeatureId) -> ClassCounts {
        self.features.get(&f).copied().unwrap_or([0, 0])
    }

    /// The features in id order: the order the model file stores and digests them in.
    pub fn sorted(&self) -> Vec<(FeatureId, ClassCounts)> {
        let mut v: Vec<_> = self.features.iter().map(|(&k, &c)| (k, c)).collect();
        v.sort_unstable_by_key(|&(k, _)| k);
        v
    }

    /// Approximate heap bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the entry.
        self.features.capacity() * (std::mem::size_of::<(FeatureId, ClassCounts)>() + 1)
    }
}
