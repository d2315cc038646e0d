//! Checking comments: [`App::check`] and [`App::check_batch`] validate the input, score the
//! text (with the site's online layer, if it has one), look up reputation, let the policy decide,
//! teach reputation what the verdict says, and keep the check a while so feedback can name it
//! by id.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{App, AppError, Caller};
use crate::comment::Comment;
use crate::config::FeedbackSettings;
use crate::policy::{decide, Decision, Signals};
use crate::text::Scratch;
use crate::verdict::Verdict;

/// Text reasons listed per check.
const TEXT_REASONS: usize = 6;

/// One comment to check, as every adapter hands it over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckInput {
    /// The comment and its sender's details.
    pub comment: Comment,
    /// The id of the comment it replies to.
    pub parent_id: String,
    /// The comment's language.
    pub language: String,
    /// The post's URL.
    pub permalink: String,
    /// When the post was published (seconds since the epoch, 0 = unknown).
    pub published_unix: i64,
    /// The client's Referer.
    pub referrer: String,
    /// The honeypot field's value.
    pub honeypot: String,
    /// The caller's own id for the comment.
    pub external_id: String,
    /// A test call: no reputation or training effects.
    pub is_test: bool,
}

/// The answer to one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// Verdict, probability, reasons, discard.
    pub decision: Decision,
    /// The model version that scored it.
    pub model_version: String,
    /// This check's id.
    pub check_id: String,
    /// Whether an optional part was unavailable.
    pub degraded: bool,
    /// The caller's id, echoed.
    pub external_id: String,
}

/// A check kept for feedback by id.
#[derive(Debug, Clone)]
pub(super) struct RecentCheck {
    /// The site that checked it: only that site may label it by id.
    pub(super) site: String,
    pub(super) comment: Comment,
    pub(super) is_test: bool,
    at: u64,
    /// What was decided, so a label can be counted as a false positive or missed spam.
    pub(super) verdict: Verdict,
}

/// Recent checks, bounded in count, bytes and age; oldest go first.
#[derive(Debug, Default)]
struct RecentChecks {
    by_id: HashMap<String, RecentCheck>,
    order: VecDeque<String>,
    bytes: usize,
}

impl RecentChecks {
    /// What one kept check costs in memory: its text plus the map and queue entries, the id
    /// twice, the site, the strings' headers and the allocator's rounding (measured: a budget
    /// of 24 MiB at 400 bytes each took 48 MB of resident memory).
    fn size(c: &Comment) -> usize {
        c.content.len()
            + c.author.len()
            + c.email.len()
            + c.url.len()
            + c.ip.len()
            + c.user_agent.len()
            + 640
    }

    fn insert(&mut self, id: String, check: RecentCheck, limits: &FeedbackSettings) {
        self.bytes += Self::size(&check.comment);
        self.order.push_back(id.clone());
        self.by_id.insert(id, check);
        while self.order.len() > limits.recent_checks || self.bytes > limits.recent_checks_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(c) = self.by_id.remove(&old) {
                self.bytes = self.bytes.saturating_sub(Self::size(&c.comment));
            }
        }
    }

    fn get(&self, id: &str, now: u64, max_age: u64) -> Option<&RecentCheck> {
        self.by_id
            .get(id)
            .filter(|c| now.saturating_sub(c.at) <= max_age)
    }
}

/// What checking keeps: where check ids come from, and the recent checks.
pub(super) struct CheckParts {
    /// This process's random prefix of check ids, so ids from replicas and restarts differ.
    prefix: String,
    counter: AtomicU64,
    recent: Mutex<RecentChecks>,
}

impl CheckParts {
    pub(super) fn new() -> CheckParts {
        CheckParts {
            prefix: format!("{:08x}", crate::random_u64() as u32),
            counter: AtomicU64::new(0),
            recent: Mutex::new(RecentChecks::default()),
        }
    }
}

impl App {
    /// Checks that `input` is within the limits; errors name the field.
    pub fn validate(&self, input: &CheckInput) -> Result<(), AppError> {
        let limits = &self.inner.settings.limits;
        let c = &input.comment;
        if c.content.trim().is_empty() {
            return Err(AppError::invalid("comment.content", "must not be empty"));
        }
        if c.content.len() > limits.max_content_bytes {
            return Err(AppError::invalid(
                "comment.content",
                format!(
                    "{} bytes is over the limit of {} bytes",
                    c.content.len(),
                    limits.max_content_bytes
                ),
            ));
        }
        let fields: [(&str, &str); 10] = [
            ("comment.author_name", &c.author),
            ("comment.author_email", &c.email),
            ("comment.author_url", &c.url),
            ("comment.parent_id", &input.parent_id),
            ("comment.language", &input.language),
            ("post.permalink", &input.permalink),
            ("client.ip", &c.ip),
            ("client.user_agent", &c.user_agent),
            ("client.referrer", &input.referrer),
            ("client.honeypot", &input.honeypot),
        ];
        for (field, value) in fields {
            if value.len() > limits.max_field_bytes {
                return Err(AppError::invalid(
                    field,
                    format!(
                        "{} bytes is over the limit of {} bytes",
                        value.len(),
                        limits.max_field_bytes
                    ),
                ));
            }
        }
        if input.external_id.len() > limits.max_field_bytes {
            return Err(AppError::invalid("external_id", "too long"));
        }
        if !c.ip.trim().is_empty() && c.ip.trim().parse::<std::net::IpAddr>().is_err() {
            return Err(AppError::invalid(
                "client.ip",
                "is not an IPv4 or IPv6 address",
            ));
        }
        Ok(())
    }

    /// Checks one comment for `caller`'s site.
    pub async fn check(
        &self,
        caller: &Caller,
        input: CheckInput,
    ) -> Result<CheckOutcome, AppError> {
        self.validate(&input)?;
        Ok(self.check_valid(caller, input).await)
    }

    /// Checks up to `limits.max_batch` comments; one invalid item fails the batch, naming it.
    pub async fn check_batch(
        &self,
        caller: &Caller,
        inputs: Vec<CheckInput>,
    ) -> Result<Vec<CheckOutcome>, AppError> {
        if inputs.is_empty() {
            return Err(AppError::invalid("requests", "must not be empty"));
        }
        if inputs.len() > self.inner.settings.limits.max_batch {
            return Err(AppError::invalid(
                "requests",
                format!(
                    "{} comments is over the limit of {} per batch",
                    inputs.len(),
                    self.inner.settings.limits.max_batch
                ),
            ));
        }
        for (i, input) in inputs.iter().enumerate() {
            self.validate(input)
                .map_err(|e| e.in_field(&format!("requests[{i}]")))?;
        }
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            out.push(self.check_valid(caller, input).await);
        }
        Ok(out)
    }

    /// The recent check `id`, if it is still kept and not too old.
    pub(super) fn recent_check(&self, id: &str, now: u64) -> Result<Option<RecentCheck>, AppError> {
        let max_age = self.inner.settings.feedback.recent_check_secs;
        Ok(self
            .inner
            .checks
            .recent
            .lock()
            .map_err(|_| AppError::Internal("recent checks lock poisoned".into()))?
            .get(id, now, max_age)
            .cloned())
    }

    async fn check_valid(&self, caller: &Caller, input: CheckInput) -> CheckOutcome {
        let started = std::time::Instant::now();
        let inner = &self.inner;
        let slot = self.slot();
        let mut scratch = Scratch::default();
        let mut feats = Vec::new();
        // A site with feedback of its own is scored on the global counts merged with its layer,
        // and its reasons weigh the tokens the same way.
        let fit = inner
            .settings
            .targets_of(&caller.site)
            .map(|targets| (targets, slot.main_thresholds()));
        let (text, text_reasons, familiarity, fitted) = inner.layers.score(
            inner.settings.layer_of(&caller.site),
            &slot.model,
            &input.comment,
            inner.settings.min_learns_of(&caller.site),
            fit,
            TEXT_REASONS,
            &mut scratch,
            &mut feats,
        );

        // Shared identities (every site's check verdicts) and this site's own (its moderators'
        // feedback), looked up together in one round trip.
        let ids = inner.hasher.identities(&input.comment);
        let site_ids = inner.hasher.scoped_to_site(&ids, &caller.site);
        let mut all_ids = ids.clone();
        all_ids.extend(site_ids.iter().cloned());
        let now = self.now();
        let (tallies, degraded) = match inner.store.lookup(&all_ids, now).await {
            Ok(t) => (Some(t), false),
            Err(e) => {
                tracing::warn!(store = inner.store.name(), cause = %e, "reputation lookup failed; answering without it");
                (None, true)
            }
        };
        let kinds: Vec<_> = all_ids.iter().map(|i| i.kind).collect();
        let paired: Option<Vec<_>> = tallies.map(|t| kinds.into_iter().zip(t).collect());
        let (reputation, site_reputation) = match &paired {
            Some(p) => {
                let (shared, own) = p.split_at(ids.len().min(p.len()));
                (Some(shared), Some(own))
            }
            None => (None, None),
        };
        // Until its moderators have taught it enough, a site is decided with the stricter
        // thresholds fitted on sources the model had not seen (see `Familiarity`); after, with
        // the thresholds fitted on its own labels (see `model::site_fit`), unless it set its own.
        let (site_policy, _) = slot.site_policy(&caller.site, familiarity, fitted);
        let policy = &site_policy;
        let honeypot_filled = !input.honeypot.trim().is_empty();
        let decision = decide(
            policy,
            &Signals {
                text,
                text_reasons: &text_reasons,
                reputation,
                site_reputation,
                links: text.links,
                honeypot_filled,
            },
        );

        // What the verdict teaches the sender's identifiers (see `policy::teaches`); test
        // calls never teach.
        let text_verdict = policy.thresholds.decide(text.log_odds);
        let learned = crate::policy::teaches(&decision, text_verdict, honeypot_filled);
        if let (Some(label), false, false) = (learned, input.is_test, degraded) {
            // Both stores take this without waiting on the network: the embedded one updates
            // in place, the Redis one queues the write for its writer task.
            if let Err(e) = inner.store.record(&ids, label, 1.0, now).await {
                tracing::warn!(store = inner.store.name(), cause = %e, "recording reputation failed");
                self.count_reputation_error();
            }
        }

        let n = inner.checks.counter.fetch_add(1, Ordering::Relaxed);
        let check_id = format!("{}-{:x}", inner.checks.prefix, n);
        if inner.settings.feedback.recent_checks > 0 {
            if let Ok(mut recent) = inner.checks.recent.lock() {
                recent.insert(
                    check_id.clone(),
                    RecentCheck {
                        site: caller.site.clone(),
                        comment: input.comment,
                        is_test: input.is_test,
                        at: now,
                        verdict: decision.verdict,
                    },
                    &inner.settings.feedback,
                );
            }
        }
        tracing::debug!(site = %caller.site, verdict = decision.verdict.as_str(), degraded, "checked");
        if !input.is_test {
            self.count_check(&caller.site, decision.verdict, degraded, started.elapsed());
        }
        CheckOutcome {
            decision,
            model_version: slot.version.clone(),
            check_id,
            degraded,
            external_id: input.external_id,
        }
    }
}
