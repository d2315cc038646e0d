//! `hamgate import`: a blog's moderation history into the label log, before its first check.
//!
//! Every file is read whole first (see `hamgate::import`): one malformed file and nothing is
//! written. Each imported comment goes into the label log as a label of the site, its check id
//! the record's import key (`import-` and a hash of the export's own comment id), so importing
//! the same file again appends nothing: keys already in the log for this site are skipped. The
//! server learns the labels into the site's layer when it reads the log at start.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use hamgate::comment::Label;
use hamgate::import::{read_import_file, ImportFormat, ImportedFile};
use hamgate::labels::file::FileLabelLog;
use hamgate::labels::{LabelLog, LabelRecord};

/// `hamgate import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The site the history belongs to (as in `sites.NAME`).
    #[arg(long)]
    pub site: String,
    /// The label log to import into (created when missing; `serve` reads it at start).
    #[arg(long)]
    pub label_log: PathBuf,
    /// The files' format when it should not be detected: wp-json, wp-csv, wxr, disqus, jsonl,
    /// csv.
    #[arg(long)]
    pub format: Option<ImportFormat>,
    /// Exports to import: `wp comment list --status=any --format=json|csv --fields=...`,
    /// a WordPress WXR export, a Disqus XML export, hamgate JSONL or CSV.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

/// Labels appended at once: the log commits them together, one `fsync` for many.
const IN_FLIGHT: usize = 512;

pub fn cmd_import(a: ImportArgs) -> Result<()> {
    anyhow::ensure!(!a.site.trim().is_empty(), "--site must name a site");
    // All files parsed before anything is written: nothing half-imported.
    let files: Vec<ImportedFile> = a
        .files
        .iter()
        .map(|f| read_import_file(f, a.format))
        .collect::<Result<_, _>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    super::runtime()?.block_on(async {
        let (log, _) = FileLabelLog::open(&a.label_log)?;
        let log: Arc<dyn LabelLog> = Arc::new(log);
        let mut present: HashSet<String> = log
            .read_all()
            .await?
            .into_iter()
            .filter(|l| l.record.site == a.site && l.record.check_id.starts_with("import-"))
            .map(|l| l.record.check_id)
            .collect();
        let mut appended = 0u64;
        let mut already = 0u64;
        for file in &files {
            let mut pending = tokio::task::JoinSet::new();
            for c in &file.comments {
                let key = c.key.to_string();
                if !present.insert(key.clone()) {
                    already += 1;
                    continue;
                }
                let record = LabelRecord {
                    site: a.site.clone(),
                    label: c.label,
                    // As the Feedback RPC logs it: the text and the tokens the model needs,
                    // no IP and no full address.
                    comment: hamgate::text::tokens::training_copy(&c.comment),
                    check_id: key,
                    moderator: "import".into(),
                    reason: format!(
                        "{} {}:{}",
                        file.format.name(),
                        file.path.display(),
                        c.line
                    ),
                    at: c.posted_at.unwrap_or(now),
                };
                let log = Arc::clone(&log);
                pending.spawn(async move { log.append(record).await });
                if pending.len() >= IN_FLIGHT {
                    if let Some(done) = pending.join_next().await {
                        done.context("an append task failed")??;
                        appended += 1;
                    }
                }
            }
            while let Some(done) = pending.join_next().await {
                done.context("an append task failed")??;
                appended += 1;
            }
            let skipped: Vec<String> = file
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {}", reason.as_str()))
                .collect();
            println!(
                "{}: {} ({}): {} ham, {} spam{}",
                file.path.display(),
                file.format.name(),
                a.site,
                file.count(Label::Ham),
                file.count(Label::Spam),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped {}", skipped.join(", "))
                }
            );
        }
        println!(
            "{appended} labels written to {} ({already} already there); `hamgate serve` teaches them to site `{}` at start",
            a.label_log.display(),
            a.site
        );
        Ok(())
    })
}
