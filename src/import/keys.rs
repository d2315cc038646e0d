//! Import keys: a record's identity that survives reading the same export again.

use std::collections::{HashMap, HashSet};
use std::fmt;

use sha2::{Digest, Sha256};

use super::ImportFormat;

/// A record's stable identity within one site's imported history: `import-` and 32 hex digits
/// (128 bits of a SHA-256). The same record read again, from the same file or from another
/// export of the same blog in the same family, gets the same key. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImportKey(String);

impl ImportKey {
    /// The key as text (`import-` and 32 hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bumped if the key recipe ever changes, so old and new keys never collide by accident.
const RECIPE: &str = "hamgate-import-key-v1";

/// Makes the keys of one file's records.
pub(super) struct KeyMaker {
    /// WP-CLI and WXR share one family: both carry WordPress's own `comment_ID`.
    family: &'static str,
    /// How many records so far had each content-derived base hash.
    ordinals: HashMap<[u8; 32], u64>,
    seen: HashSet<ImportKey>,
}

impl KeyMaker {
    pub(super) fn new(format: ImportFormat) -> Self {
        let family = match format {
            ImportFormat::WpCliJson | ImportFormat::WpCliCsv | ImportFormat::WordPressWxr => {
                "wordpress"
            }
            ImportFormat::DisqusXml => "disqus",
            ImportFormat::HamgateJsonl | ImportFormat::HamgateCsv => "hamgate",
        };
        KeyMaker {
            family,
            ordinals: HashMap::new(),
            seen: HashSet::new(),
        }
    }

    /// The key of a record with its own id.
    pub(super) fn by_id(&self, id: &str) -> ImportKey {
        finish(digest(&[RECIPE, self.family, "id", id]))
    }

    /// The key of a record without an id: its parts, and how many identical records came
    /// before it in this file.
    pub(super) fn by_content(&mut self, parts: &[&str]) -> ImportKey {
        let mut all = vec![RECIPE, self.family, "content"];
        all.extend_from_slice(parts);
        let base = digest(&all);
        let ordinal = self.ordinals.entry(base).or_default();
        let n = *ordinal;
        *ordinal += 1;
        let mut h = Sha256::new();
        h.update(base);
        h.update(n.to_le_bytes());
        finish(h.finalize().into())
    }

    /// Whether `key` is new in this file (and remembers it).
    pub(super) fn first_time(&mut self, key: &ImportKey) -> bool {
        self.seen.insert(key.clone())
    }
}

/// SHA-256 over length-prefixed parts, so `("ab", "c")` and `("a", "bc")` differ.
fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

fn finish(hash: [u8; 32]) -> ImportKey {
    let head: &[u8] = hash.get(..16).unwrap_or(&hash);
    ImportKey(format!("import-{}", crate::corpus::hex(head)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_key_by_family_and_content_keys_count_repeats() {
        let mut wp = KeyMaker::new(ImportFormat::WpCliJson);
        let wxr = KeyMaker::new(ImportFormat::WordPressWxr);
        let dq = KeyMaker::new(ImportFormat::DisqusXml);
        assert_eq!(wp.by_id("7"), wxr.by_id("7"));
        assert_ne!(wp.by_id("7"), dq.by_id("7"));
        assert_ne!(wp.by_id("7"), wp.by_id("8"));
        let a = wp.by_content(&["+1", "anon"]);
        let b = wp.by_content(&["+1", "anon"]);
        assert_ne!(a, b);
        let mut again = KeyMaker::new(ImportFormat::WpCliCsv);
        assert_eq!(again.by_content(&["+1", "anon"]), a);
        assert_eq!(again.by_content(&["+1", "anon"]), b);
        assert_ne!(
            wp.by_content(&["ab", "c"]),
            KeyMaker::new(ImportFormat::WpCliJson).by_content(&["a", "bc"])
        );
        assert!(a.as_str().starts_with("import-") && a.as_str().len() == 7 + 32);
    }
}
