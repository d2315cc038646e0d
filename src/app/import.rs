//! A blog's moderation history into the running service: [`App::import_labels`] takes one
//! batch of a site's labelled comments (the ImportLabels RPC sends one per stream message),
//! appends the labels it has not seen durably to the label log, all at once so the file log
//! commits them with a few `fsync`s, and teaches them to the site's layer.
//!
//! Imports are idempotent: each label carries its import key (see `crate::import`), and a key
//! the site's log already holds is skipped. The keys are kept here, per site, read from the log
//! on the first import and noted as the log is restored and followed (a replica sharing a Redis
//! log sees the other replicas' imports), so a second import of the same export appends nothing.
//!
//! Imported labels are the operator's own history: the layers learn them whatever their date
//! and outside the hourly budget that guards live feedback ([`crate::labels::LabelRecord::imported`]).

use std::collections::{HashMap, HashSet};
use std::ops::AddAssign;
use std::sync::Mutex;

use super::{App, AppError, Caller, CheckInput, OPEN_SITE};
use crate::comment::Label;
use crate::labels::{LabelRecord, IMPORT_KEY_PREFIX};
use crate::text::Scratch;

/// One labelled comment of a site's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The comment, as it would have been sent to check.
    pub check: CheckInput,
    /// Spam or ham.
    pub label: Label,
    /// Its import key: `import-` and an id stable across reads of the same export.
    pub key: String,
    /// When the comment was posted, seconds since the epoch, when the export says.
    pub posted_at: Option<u64>,
    /// Where it came from, for the log (`wp-json comments.json:12`).
    pub source: String,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Labels durably appended to the label log.
    pub appended: u64,
    /// Labels skipped: their import key was already in the site's log.
    pub already_present: u64,
    /// Labels the site's layer learned.
    pub learned: u64,
}

impl AddAssign for ImportOutcome {
    fn add_assign(&mut self, o: ImportOutcome) {
        self.appended += o.appended;
        self.already_present += o.already_present;
        self.learned += o.learned;
    }
}

/// The import keys each site's log holds.
#[derive(Debug, Default)]
pub(super) struct ImportParts {
    /// Site to the import keys logged for it. A std lock: held for set lookups, never across
    /// an await.
    keys: Mutex<HashMap<String, HashSet<String>>>,
    /// Set once the whole log has been read for keys (on the first import), so concurrent
    /// first imports read it once.
    loaded: tokio::sync::OnceCell<()>,
}

impl App {
    /// Remembers `record`'s import key, if it is an imported label: called for every label
    /// read from the log (at start, after a model swap, and as a shared log is followed).
    pub(super) fn note_import(&self, record: &LabelRecord) {
        if let Some(key) = record.import_key() {
            if let Ok(mut keys) = self.inner.imports.keys.lock() {
                keys.entry(record.site.clone())
                    .or_default()
                    .insert(key.to_string());
            }
        }
    }

    /// Reads the whole log for import keys, once per process. Keys noted meanwhile (a shared
    /// log being followed) are kept: the sets only grow.
    async fn load_import_keys(&self) -> Result<(), AppError> {
        self.inner
            .imports
            .loaded
            .get_or_try_init(|| async {
                let labels = self.read_labels().await?;
                for l in &labels {
                    self.note_import(&l.record);
                }
                tracing::debug!(labels = labels.len(), "import keys read from the label log");
                Ok::<(), AppError>(())
            })
            .await
            .map(|_| ())
    }

    /// Whether `caller` may import labels: only the admin key may.
    pub fn may_import(&self, caller: &Caller) -> Result<(), AppError> {
        if caller.admin {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(
                "importing labels needs the admin key".into(),
            ))
        }
    }

    /// Imports one batch of `site`'s history (admin key only): checks every item first (an
    /// error names `labels[i]` and the field, and nothing of the batch is logged), skips the
    /// items whose import key the site's log holds, appends the others durably, all in flight
    /// together, and teaches them to the site's layer, outside the hourly budget.
    pub async fn import_labels(
        &self,
        caller: &Caller,
        site: &str,
        items: Vec<ImportItem>,
    ) -> Result<ImportOutcome, AppError> {
        self.may_import(caller)?;
        self.check_import(site, &items)?;
        self.load_import_keys().await?;

        let now = self.now();
        let mut outcome = ImportOutcome::default();
        let mut records = Vec::with_capacity(items.len());
        {
            let mut keys = self
                .inner
                .imports
                .keys
                .lock()
                .map_err(|_| AppError::Internal("the import keys' lock is poisoned".into()))?;
            let known = keys.entry(site.to_string()).or_default();
            for item in items {
                // Reserved before the append, so a concurrent import of the same export
                // appends each label once.
                if !known.insert(item.key.clone()) {
                    outcome.already_present += 1;
                    continue;
                }
                records.push(LabelRecord {
                    site: site.to_string(),
                    label: item.label,
                    // As the Feedback RPC logs it: the text and the tokens the model needs,
                    // no IP and no full address.
                    comment: crate::text::tokens::training_copy(&item.check.comment),
                    check_id: item.key,
                    moderator: "import".into(),
                    reason: item.source,
                    at: now,
                    posted_at: item.posted_at,
                    imported: true,
                });
            }
        }

        // All appends in flight together: the file log commits what is queued with one fsync.
        let log = &self.inner.labels.log;
        let results =
            futures_util::future::join_all(records.iter().map(|r| log.append(r.clone()))).await;
        let mut appended = Vec::with_capacity(records.len());
        let mut failure = None;
        for (record, result) in records.into_iter().zip(results) {
            match result {
                Ok(seq) => appended.push((seq, record)),
                Err(e) => {
                    // Maybe in the log, maybe not: forgetting the key lets a retry try again
                    // (readers tolerate a duplicate; a lost label would be silent).
                    if let Ok(mut keys) = self.inner.imports.keys.lock() {
                        if let Some(known) = keys.get_mut(site) {
                            known.remove(&record.check_id);
                        }
                    }
                    failure.get_or_insert(e);
                }
            }
        }
        outcome.appended = appended.len() as u64;

        outcome.learned = if self.inner.labels.shared {
            // Learned in log order with every other replica's labels, as they all do.
            let seqs: Vec<u64> = appended.iter().map(|(seq, _)| *seq).collect();
            self.catch_up_learned(&seqs).await.unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "labels imported; the site's layer learns them on the next follow");
                0
            })
        } else {
            let model = &self.slot().model;
            let mut scratch = Scratch::default();
            let learned = appended
                .iter()
                .filter(|(_, r)| self.learn_label(model, r, &mut scratch))
                .count();
            learned as u64
        };
        tracing::info!(
            site,
            appended = outcome.appended,
            already_present = outcome.already_present,
            learned = outcome.learned,
            "labels imported"
        );
        match failure {
            None => Ok(outcome),
            Some(e) => {
                tracing::error!(log = log.name(), cause = %e, appended = outcome.appended, "label log append failed during an import");
                Err(AppError::Unavailable(format!(
                    "the label log is unavailable; {} labels of this batch were recorded, importing again adds the rest: {e}",
                    outcome.appended
                )))
            }
        }
    }

    /// The site and every item of a batch, checked before anything is logged.
    fn check_import(&self, site: &str, items: &[ImportItem]) -> Result<(), AppError> {
        let limits = &self.inner.settings.limits;
        if site.trim().is_empty() {
            return Err(AppError::invalid("site", "must name a site"));
        }
        let served =
            self.inner.settings.sites.contains_key(site) || (self.inner.open && site == OPEN_SITE);
        if !served {
            let mut names: Vec<&str> = self
                .inner
                .settings
                .sites
                .keys()
                .map(String::as_str)
                .collect();
            if self.inner.open {
                names.push(OPEN_SITE);
            }
            names.sort_unstable();
            return Err(AppError::invalid(
                "site",
                format!(
                    "no site `{}` is served here; one of: {}",
                    site.chars().take(64).collect::<String>(),
                    names.join(", ")
                ),
            ));
        }
        if items.len() > limits.max_batch {
            return Err(AppError::invalid(
                "labels",
                format!(
                    "{} labels in one message is over the limit of {} (limits.max_batch)",
                    items.len(),
                    limits.max_batch
                ),
            ));
        }
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("labels[{i}].{field}");
            self.validate(&item.check)
                .map_err(|e| e.in_field(&at("check")))?;
            if item.check.is_test {
                return Err(AppError::invalid(
                    at("check.is_test"),
                    "test comments never train",
                ));
            }
            let key = item.key.as_str();
            if !key.starts_with(IMPORT_KEY_PREFIX) || key.len() == IMPORT_KEY_PREFIX.len() {
                return Err(AppError::invalid(
                    at("import_key"),
                    format!("must be `{IMPORT_KEY_PREFIX}` and the record's stable id"),
                ));
            }
            for (field, value) in [("import_key", key), ("source", item.source.as_str())] {
                if value.len() > limits.max_field_bytes {
                    return Err(AppError::invalid(
                        at(field),
                        format!(
                            "{} bytes is over the limit of {} bytes",
                            value.len(),
                            limits.max_field_bytes
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
