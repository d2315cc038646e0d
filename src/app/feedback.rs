//! Moderators' labels: [`App::feedback`] logs each label durably before acknowledging it, then
//! teaches the site's reputation and its online layer. The layers are rebuilt from the label log
//! at start and after a model swap ([`App::restore_layers`]); with a log shared by replicas
//! (Redis) every replica's layers learn by following it in log order ([`App::follow_labels`]), so
//! all replicas' layers are the same. [`App::expire_labels`] applies the retention period.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{App, AppError, Caller, CheckInput};
use crate::comment::Label;
use crate::config::Settings;
use crate::labels::{LabelLog, LabelRecord, LoggedLabel};
use crate::model::Model;
use crate::text::Scratch;

/// A moderator's label for a comment.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackInput {
    /// The comment it is for.
    pub target: FeedbackTarget,
    /// Spam or ham.
    pub label: Label,
    /// Who decided.
    pub moderator: String,
    /// Why.
    pub reason: String,
}

/// Which comment a label is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackTarget {
    /// A recent check of the caller's site, by the id its answer carried.
    CheckId(String),
    /// The comment itself, as it was (or would have been) sent to check.
    Comment(Box<CheckInput>),
}

/// What became of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackOutcome {
    /// Its position in the label log.
    pub label_seq: u64,
    /// Whether the site's layer learned it now.
    pub learned: bool,
    /// What happened, for people.
    pub note: String,
}

/// The shared log as followed by this replica.
#[derive(Debug, Default)]
struct Follow {
    /// The last seq learned (or skipped).
    cursor: u64,
    /// Whether recent seqs were learned, so a feedback call can report on its own label when
    /// another call's catch-up learned it.
    learned: VecDeque<(u64, bool)>,
}

/// Outcomes of followed labels remembered for [`Follow::learned`].
const FOLLOW_MEMORY: usize = 4096;

/// The label log and how this replica follows it.
pub(super) struct LabelParts {
    pub(super) log: Arc<dyn LabelLog>,
    /// Whether there may be labels to replay into the sites' layers at start.
    replay: bool,
    /// Whether the label log is shared by replicas (Redis): then every replica's layers learn
    /// by following the log, in log order, its own labels included, so all replicas' layers
    /// are the same.
    pub(super) shared: bool,
    /// How far this replica has followed the shared log.
    follow: tokio::sync::Mutex<Follow>,
}

impl LabelParts {
    pub(super) fn new(settings: &Settings, log: Arc<dyn LabelLog>) -> LabelParts {
        LabelParts {
            replay: settings.uses_redis() || settings.feedback.label_log.exists(),
            shared: log.name() == "redis",
            log,
            follow: tokio::sync::Mutex::new(Follow::default()),
        }
    }

    /// What an operator should know about the log (damage found when it was opened).
    pub(super) fn notices(&self) -> Vec<String> {
        self.log.notices()
    }
}

impl App {
    /// Labels the layer a site is scored with has learned (the site's own, or the one it
    /// shares), for reports and tests.
    pub fn site_labels_learned(&self, site: &str) -> u64 {
        self.inner.layers.labels(self.inner.settings.layer_of(site))
    }

    /// Removes labels older than `feedback.label_retention_days` from the label log (none when
    /// it is 0); returns how many went.
    pub async fn expire_labels(&self) -> Result<u64, AppError> {
        let days = self.inner.settings.feedback.label_retention_days;
        if days == 0 {
            return Ok(0);
        }
        let before = self.now().saturating_sub(days.saturating_mul(86_400));
        self.inner
            .labels
            .log
            .expire_before(before)
            .await
            .map_err(|e| AppError::Unavailable(format!("expiring labels: {e}")))
    }

    pub(super) async fn read_labels(&self) -> Result<Vec<LoggedLabel>, AppError> {
        self.inner
            .labels
            .log
            .read_all()
            .await
            .map_err(|e| AppError::Unavailable(format!("reading the label log: {e}")))
    }

    /// Rebuilds the sites' online layers from the label log, so they survive a restart and a
    /// model swap: every label newer than the model in service (older ones are in the model, or
    /// were held back by the retrain that made it), within the same hourly per-site budget as
    /// online learning, counted by each label's own hour. Returns the labels learned. Does
    /// nothing when there is no log yet (the file log is never created just to read it).
    pub async fn restore_layers(&self) -> Result<u64, AppError> {
        if !self.inner.labels.replay {
            return Ok(0);
        }
        let mut follow = self.inner.labels.follow.lock().await;
        let labels = self.read_labels().await?;
        self.inner.layers.reset();
        follow.cursor = 0;
        let learned = self.learn_logged(&labels, &mut follow);
        tracing::info!(
            labels = labels.len(),
            learned,
            "site layers restored from the label log"
        );
        Ok(learned)
    }

    /// Learns labels other replicas appended to the shared log since the last call (a no-op
    /// for a log only this process writes). Returns the labels learned.
    pub async fn follow_labels(&self) -> Result<u64, AppError> {
        if !self.inner.labels.shared {
            return Ok(0);
        }
        let mut follow = self.inner.labels.follow.lock().await;
        let labels = self.read_log_after(follow.cursor).await?;
        Ok(self.learn_logged(&labels, &mut follow))
    }

    async fn read_log_after(&self, cursor: u64) -> Result<Vec<LoggedLabel>, AppError> {
        self.inner
            .labels
            .log
            .read_after(cursor)
            .await
            .map_err(|e| AppError::Unavailable(format!("reading the label log: {e}")))
    }

    /// Learns logged labels in log order into the sites' layers (labels older than the model in
    /// service, or over their site's hourly budget, are skipped), advancing the cursor. Imported
    /// history is the operator's own: learned whatever its date, outside the budget.
    fn learn_logged(&self, labels: &[LoggedLabel], follow: &mut Follow) -> u64 {
        let slot = self.slot();
        // A retrained model knows the last label it learned; the labels after it (including
        // the ones its retrain held back) are the layers' to learn. For any other model, the
        // labels since it was made, and all imported history: a model not retrained on the log
        // has learned none of it, however long after the import it was made.
        let header = slot.model.header();
        let (through, since) = (header.labels_through, header.created_at);
        let is_new = |l: &LoggedLabel| {
            if through > 0 {
                l.seq > through
            } else {
                l.record.is_import() || l.record.at >= since
            }
        };
        let mut scratch = Scratch::default();
        let mut learned = 0;
        for l in labels {
            if l.seq <= follow.cursor {
                continue;
            }
            self.note_import(&l.record);
            let ok = is_new(l)
                && (l.record.is_import() || self.take_budget(&l.record.site, l.record.at))
                && self.learn_label(&slot.model, &l.record, &mut scratch);
            learned += u64::from(ok);
            follow.cursor = l.seq;
            follow.learned.push_back((l.seq, ok));
            if follow.learned.len() > FOLLOW_MEMORY {
                follow.learned.pop_front();
            }
        }
        learned
    }

    /// Counts one label of `site` made at `at` against that site's budget for the label's
    /// hour; false when spent.
    fn take_budget(&self, site: &str, at: u64) -> bool {
        self.inner.layers.take_budget(site, at, self.now())
    }

    /// Teaches the layer `record`'s site is scored with (its own, or the one it shares).
    pub(super) fn learn_label(
        &self,
        model: &Model,
        record: &LabelRecord,
        scratch: &mut Scratch,
    ) -> bool {
        let layer = self.inner.settings.layer_of(&record.site);
        self.inner
            .layers
            .learn(layer, model, record.label, &record.comment, scratch)
    }

    /// Learns the shared log up to `seq` (the caller's own label) and says whether that label
    /// was learned.
    async fn catch_up_to(&self, seq: u64) -> Result<bool, AppError> {
        let mut follow = self.inner.labels.follow.lock().await;
        if follow.cursor < seq {
            let labels = self.read_log_after(follow.cursor).await?;
            self.learn_logged(&labels, &mut follow);
        }
        Ok(follow
            .learned
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .is_some_and(|(_, ok)| *ok))
    }

    /// Learns the shared log up to the last of `seqs` (labels this replica just appended) and
    /// counts how many of them were learned.
    pub(super) async fn catch_up_learned(&self, seqs: &[u64]) -> Result<u64, AppError> {
        let Some(&last) = seqs.iter().max() else {
            return Ok(0);
        };
        let mut follow = self.inner.labels.follow.lock().await;
        if follow.cursor < last {
            let labels = self.read_log_after(follow.cursor).await?;
            self.learn_logged(&labels, &mut follow);
        }
        let mine: std::collections::HashSet<u64> = seqs.iter().copied().collect();
        Ok(follow
            .learned
            .iter()
            .filter(|(s, ok)| *ok && mine.contains(s))
            .count() as u64)
    }

    /// Takes a moderator's label: logs it durably, then updates reputation and the site's
    /// layer. Nothing is acknowledged before the log says the label is durable.
    pub async fn feedback(
        &self,
        caller: &Caller,
        input: FeedbackInput,
    ) -> Result<FeedbackOutcome, AppError> {
        let inner = &self.inner;
        let now = self.now();
        if input.moderator.len() > inner.settings.limits.max_field_bytes {
            return Err(AppError::invalid("moderator_id", "too long"));
        }
        if input.reason.len() > inner.settings.limits.max_field_bytes {
            return Err(AppError::invalid("reason", "too long"));
        }
        let (comment, check_id, verdict) = match input.target {
            FeedbackTarget::CheckId(id) if id.trim().is_empty() => {
                return Err(AppError::invalid(
                    "check_id",
                    "is empty: give the check_id of a recent check, or the check itself",
                ))
            }
            FeedbackTarget::Comment(c) => {
                self.validate(&c).map_err(|e| e.in_field("check"))?;
                if c.is_test {
                    return Err(AppError::FailedPrecondition(
                        "check.is_test: test comments never train".into(),
                    ));
                }
                (c.comment, String::new(), None)
            }
            FeedbackTarget::CheckId(id) => {
                let id = id.trim();
                // Looked up once: the verdict counted below is this check's, even if the
                // cache evicts it meanwhile.
                let found = self
                    .recent_check(id, now)?
                    .filter(|c| c.site == caller.site);
                let Some(check) = found else {
                    return Err(AppError::NotFound(format!(
                        "check_id `{id}` is not a recent check of this site; send the comment itself in `check`"
                    )));
                };
                if check.is_test {
                    return Err(AppError::FailedPrecondition(
                        "check_id: that check was a test (is_test); test comments never train"
                            .into(),
                    ));
                }
                (check.comment, id.to_string(), Some(check.verdict))
            }
        };

        // The log keeps what retraining needs and no more: the text, and stand-ins for the
        // identifiers that give the model the same tokens (no IP, no e-mail address, no URL
        // path). Reputation below learns from the comment as sent, as keyed hashes.
        let record = LabelRecord {
            site: caller.site.clone(),
            label: input.label,
            comment: crate::text::tokens::training_copy(&comment),
            check_id,
            moderator: input.moderator,
            reason: input.reason,
            at: now,
            posted_at: None,
            imported: false,
        };
        let label_seq = inner.labels.log.append(record.clone()).await.map_err(|e| {
            tracing::error!(log = inner.labels.log.name(), cause = %e, "label log append failed; label not acknowledged");
            AppError::Unavailable(format!("the label log is unavailable, the label was not recorded: {e}"))
        })?;
        self.count_label(&caller.site, input.label, verdict);

        // The site's own reputation learns every label at once (keyed apart from other sites',
        // so one site's labels never move another's verdicts); a failure there does not undo
        // the label.
        let ids = inner.hasher.site_identities(&comment, &caller.site);
        if let Err(e) = inner
            .store
            .record(
                &ids,
                input.label,
                inner.settings.feedback.reputation_weight,
                now,
            )
            .await
        {
            tracing::warn!(store = inner.store.name(), cause = %e, "recording feedback reputation failed");
            self.count_reputation_error();
        }

        let learned = if inner.labels.shared {
            // Learned in log order with every other replica's labels, as they all do.
            self.catch_up_to(label_seq).await.unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "label logged; the site's layer learns it on the next follow");
                false
            })
        } else {
            self.take_budget(&caller.site, now)
                && self.learn_label(&self.slot().model, &record, &mut Scratch::default())
        };
        let note = if learned {
            "logged; reputation and this site's model learned it".to_string()
        } else {
            format!(
                "logged and learned by reputation; this site's model learns at most {} labels an hour online, the rest count at the next retrain",
                inner.layers.labels_per_hour()
            )
        };
        tracing::info!(site = %caller.site, label = input.label.as_str(), seq = label_seq, learned, "feedback");
        Ok(FeedbackOutcome {
            label_seq,
            learned,
            note,
        })
    }
}
