//! Sender reputation: decaying counts of spam and ham per identifier.
//!
//! A comment carries several identifiers: the client IP, its prefix (/24 for IPv4, /64 for IPv6),
//! the author's e-mail address and its domain, the author URL's host, and a fingerprint of the
//! normalised content (spam campaigns post the same text many times). For each one the store
//! keeps how much spam and ham it was seen with, decaying with a half-life, so an IP that sent
//! spam last month counts less than one that sent it a minute ago.
//!
//! Identifiers are stored only as keyed hashes ([`IdentityHasher`], HMAC-SHA-256 with the install
//! secret), never in the clear: a dump of the store does not reveal who commented.
//!
//! Two backends implement [`ReputationStore`]: [`memory::MemoryStore`] (in-process, bounded, the
//! default) and [`redis::RedisStore`] (shared by every replica). A store that fails returns an
//! error; the application then answers without reputation and marks the answer degraded.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::comment::{Comment, Label};

/// What an identifier identifies. The name is part of the stored key, so never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// The client IP address.
    Ip,
    /// The client's /24 (IPv4) or /64 (IPv6) network.
    IpPrefix,
    /// The author's e-mail address.
    Email,
    /// The author's e-mail domain.
    EmailDomain,
    /// The author URL's host.
    UrlHost,
    /// The normalised content.
    Content,
}

impl IdentityKind {
    /// Short stable name, used in keys and reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Ip => "ip",
            IdentityKind::IpPrefix => "ip-prefix",
            IdentityKind::Email => "email",
            IdentityKind::EmailDomain => "email-domain",
            IdentityKind::UrlHost => "url-host",
            IdentityKind::Content => "content",
        }
    }

    /// How much one identifier's history may move a verdict, relative to the others. An exact
    /// address or repeated text is strong evidence; a shared network or mail provider is weak.
    pub fn weight(self) -> f64 {
        match self {
            IdentityKind::Ip => 0.6,
            IdentityKind::IpPrefix => 0.25,
            IdentityKind::Email => 0.6,
            IdentityKind::EmailDomain => 0.2,
            IdentityKind::UrlHost => 0.5,
            IdentityKind::Content => 0.8,
        }
    }
}

/// One hashed identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What it identifies.
    pub kind: IdentityKind,
    /// Hex HMAC of the kind and value: the only form in which it is stored.
    pub hash: String,
}

/// Decayed counts for one identifier.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Spam seen, decayed.
    pub spam: f64,
    /// Ham seen, decayed.
    pub ham: f64,
}

impl Tally {
    /// The counts decayed from `then` to `now` (seconds) with `half_life` seconds.
    pub fn decayed(self, then: u64, now: u64, half_life: u64) -> Tally {
        let f = decay_factor(then, now, half_life);
        Tally {
            spam: self.spam * f,
            ham: self.ham * f,
        }
    }
}

/// `0.5 ^ ((now - then) / half_life)`, and 1 when `then` is in the future (clock skew between
/// replicas must not inflate counts).
pub fn decay_factor(then: u64, now: u64, half_life: u64) -> f64 {
    if now <= then || half_life == 0 {
        return 1.0;
    }
    0.5f64.powf((now - then) as f64 / half_life as f64)
}

/// Why a reputation store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReputationError {
    /// The store is not reachable (yet).
    #[error("reputation store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("reputation store timed out after {0} ms")]
    Timeout(u64),
    /// The store answered something unexpected.
    #[error("reputation store error: {0}")]
    Backend(String),
}

/// A boxed future, so the trait can be used as `Arc<dyn ReputationStore>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ReputationError>> + Send + 'a>>;

/// A reputation store. `now` is passed in (seconds since the epoch) so tests control time.
pub trait ReputationStore: Send + Sync + 'static {
    /// The decayed tallies of `ids`, in order (zero for unknown identifiers). One round trip.
    fn lookup<'a>(&'a self, ids: &'a [Identity], now: u64) -> StoreFuture<'a, Vec<Tally>>;
    /// Adds `weight` of `label` to each of `ids`.
    fn record<'a>(
        &'a self,
        ids: &'a [Identity],
        label: Label,
        weight: f64,
        now: u64,
    ) -> StoreFuture<'a, ()>;
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Keys identifiers with the install secret.
#[derive(Clone)]
pub struct IdentityHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher(<secret>)")
    }
}

impl IdentityHasher {
    /// A hasher keyed with `secret`.
    pub fn new(secret: &[u8]) -> IdentityHasher {
        let mac = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(e) => unreachable!("HMAC accepts keys of every length: {e}"),
        };
        IdentityHasher { mac }
    }

    /// The identity of `value` as `kind`: the first 128 bits of its HMAC, in hex.
    pub fn identity(&self, kind: IdentityKind, value: &str) -> Identity {
        let mut mac = self.mac.clone();
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let bytes = mac.finalize().into_bytes();
        Identity {
            kind,
            hash: crate::corpus::hex(&bytes[..16]),
        }
    }

    /// The identifiers of a comment as one site's moderators know them: the same identifiers,
    /// keyed apart per site. Feedback writes here, so one site's labels move that site's
    /// verdicts and not another's (a site's key cannot poison the fleet), while verdicts of
    /// checks write the shared identities of [`IdentityHasher::identities`].
    pub fn site_identities(&self, comment: &Comment, site: &str) -> Vec<Identity> {
        self.scoped_to_site(&self.identities(comment), site)
    }

    /// [`IdentityHasher::site_identities`] of identities already computed.
    pub fn scoped_to_site(&self, shared: &[Identity], site: &str) -> Vec<Identity> {
        let mut ids = shared.to_vec();
        for id in &mut ids {
            let mut mac = self.mac.clone();
            mac.update(b"site\0");
            mac.update(site.as_bytes());
            mac.update(&[0]);
            mac.update(id.hash.as_bytes());
            let bytes = mac.finalize().into_bytes();
            id.hash = crate::corpus::hex(&bytes[..16]);
        }
        ids
    }

    /// The identifiers of a comment: IP and prefix, e-mail and domain, author URL host and the
    /// content fingerprint. Fields that are empty or unparsable are skipped (validation happens
    /// before this, in the application layer).
    pub fn identities(&self, comment: &Comment) -> Vec<Identity> {
        let mut ids = Vec::with_capacity(6);
        if let Ok(ip) = comment.ip.trim().parse::<IpAddr>() {
            // A backend listening on `[::]` reports IPv4 clients as `::ffff:a.b.c.d`; they are
            // the same sender as `a.b.c.d`, and must share its history and its /24.
            let ip = ip.to_canonical();
            ids.push(self.identity(IdentityKind::Ip, &ip.to_string()));
            ids.push(self.identity(IdentityKind::IpPrefix, &ip_prefix(ip)));
        }
        let email = comment.email.trim().to_lowercase();
        if let Some((_, domain)) = email.rsplit_once('@') {
            if !domain.is_empty() {
                ids.push(self.identity(IdentityKind::Email, &email));
                ids.push(self.identity(IdentityKind::EmailDomain, domain));
            }
        }
        let url = comment.url.trim().to_lowercase();
        if let Some(host) = crate::text::tokens::url_host(&url) {
            ids.push(self.identity(IdentityKind::UrlHost, host));
        }
        let key = crate::text::dedup_key(&comment.content);
        if !key.is_empty() {
            ids.push(self.identity(IdentityKind::Content, &key));
        }
        ids
    }
}

/// The network an address belongs to for reputation: /24 for IPv4, /64 for IPv6.
pub fn ip_prefix(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_keyed_and_never_clear() {
        let h = IdentityHasher::new(b"secret");
        let c = Comment {
            content: "Buy now".into(),
            email: "Bob@Example.org".into(),
            ip: "203.0.113.7".into(),
            url: "https://spam.example/x".into(),
            ..Comment::default()
        };
        let ids = h.identities(&c);
        let kinds: Vec<_> = ids.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            vec![
                IdentityKind::Ip,
                IdentityKind::IpPrefix,
                IdentityKind::Email,
                IdentityKind::EmailDomain,
                IdentityKind::UrlHost,
                IdentityKind::Content
            ]
        );
        for id in &ids {
            assert_eq!(id.hash.len(), 32);
            assert!(!id.hash.contains("203") && !id.hash.contains("example"));
        }
        // Another secret gives other keys; the same secret the same ones.
        assert_ne!(IdentityHasher::new(b"other").identities(&c)[0], ids[0]);
        assert_eq!(IdentityHasher::new(b"secret").identities(&c), ids);
    }

    #[test]
    fn prefixes() {
        assert_eq!(ip_prefix("203.0.113.7".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            ip_prefix("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn decay_halves_per_half_life_and_ignores_future_times() {
        assert!((decay_factor(0, 100, 100) - 0.5).abs() < 1e-12);
        assert!((decay_factor(0, 300, 100) - 0.125).abs() < 1e-12);
        assert_eq!(decay_factor(500, 100, 100), 1.0);
    }
}
