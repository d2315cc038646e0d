//! `hamgate import`: a blog's moderation history as one site's labels, into a label log file
//! (`--label-log`, before the server starts) or into a running server (`--addr`, the
//! ImportLabels RPC, admin key only).
//!
//! Every file is read whole first (see `hamgate::import`): one malformed file and nothing is
//! written or sent. Each imported comment becomes a label of the site, its check id the
//! record's import key (`import-` and a hash of the export's own comment id), so importing the
//! same file again appends nothing: keys already in the log for this site are skipped (by this
//! command for a file, by the server for `--addr`). The site's layer learns the labels at once
//! (`--addr`) or when the server reads the log at start, whatever their age and outside the
//! hourly online-learning budget: this is the operator's own history.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};

use hamgate::comment::Label;
use hamgate::grpc::pb;
use hamgate::import::{read_import_file, ImportFormat, ImportedComment, ImportedFile};
use hamgate::labels::file::FileLabelLog;
use hamgate::labels::{LabelLog, LabelRecord};

/// `hamgate import`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["label_log", "addr"])))]
pub struct ImportArgs {
    /// The site the history belongs to (as in `sites.NAME`; `default` for one open site).
    #[arg(long)]
    pub site: String,
    /// Import into this label log (created when missing; `serve` learns it at start). Or
    /// --addr.
    #[arg(long)]
    pub label_log: Option<PathBuf>,
    /// Import into a running server: HOST:PORT as `serve --grpc-addr` prints it, or a URL
    /// (http://HOST:PORT). Needs the admin key. Or --label-log.
    #[arg(long)]
    pub addr: Option<String>,
    /// The server's admin key, with --addr (or HAMGATE_API_KEY).
    #[arg(long, env = "HAMGATE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
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
/// Comments in one ImportLabels message (the server takes `limits.max_batch`, 1000 by default).
const BATCH: usize = 500;
/// Encoded bytes a message stops growing at, well inside the server's `limits.max_message_bytes`
/// (4 MiB by default) even when the last comment added is as long as a comment may be.
const BATCH_BYTES: usize = 1 << 20;

pub fn cmd_import(a: ImportArgs) -> Result<()> {
    anyhow::ensure!(!a.site.trim().is_empty(), "--site must name a site");
    // All files parsed before anything is written or sent: nothing half-imported.
    let files: Vec<ImportedFile> = a
        .files
        .iter()
        .map(|f| read_import_file(f, a.format))
        .collect::<Result<_, _>>()?;
    for file in &files {
        print_file_summary(file, &a.site);
    }
    match (&a.label_log, &a.addr) {
        (Some(log), None) => import_to_log(&a.site, log, &files),
        (None, Some(addr)) => {
            let key = a
                .key
                .as_deref()
                .filter(|k| !k.is_empty())
                .context("--addr needs the server's admin key: --key KEY or HAMGATE_API_KEY")?;
            import_to_server(&a.site, addr, key, files)
        }
        // clap's `target` group makes it exactly one of the two.
        _ => anyhow::bail!("give exactly one of --label-log and --addr"),
    }
}

fn print_file_summary(file: &ImportedFile, site: &str) {
    let skipped: Vec<String> = file
        .skipped
        .iter()
        .map(|(reason, n)| format!("{n} {}", reason.as_str()))
        .collect();
    println!(
        "{}: {} ({}): {} ham, {} spam{}",
        file.path.display(),
        file.format.name(),
        site,
        file.count(Label::Ham),
        file.count(Label::Spam),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped {}", skipped.join(", "))
        }
    );
}

/// Where a record came from, for the log's `reason`.
fn source(file: &ImportedFile, c: &ImportedComment) -> String {
    format!("{} {}:{}", file.format.name(), file.path.display(), c.line)
}

fn import_to_log(site: &str, path: &std::path::Path, files: &[ImportedFile]) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    super::runtime()?.block_on(async {
        let (log, _) = FileLabelLog::open(path)?;
        let log: Arc<dyn LabelLog> = Arc::new(log);
        let mut present: HashSet<String> = log
            .read_all()
            .await?
            .into_iter()
            .filter(|l| l.record.site == site)
            .filter_map(|l| l.record.import_key().map(str::to_string))
            .collect();
        let mut appended = 0u64;
        let mut already = 0u64;
        for file in files {
            let mut pending = tokio::task::JoinSet::new();
            for c in &file.comments {
                let key = c.key.to_string();
                if !present.insert(key.clone()) {
                    already += 1;
                    continue;
                }
                let record = LabelRecord {
                    site: site.to_string(),
                    label: c.label,
                    // As the Feedback RPC logs it: the text and the tokens the model needs,
                    // no IP and no full address.
                    comment: hamgate::text::tokens::training_copy(&c.comment),
                    check_id: key,
                    moderator: "import".into(),
                    reason: source(file, c),
                    at: now,
                    posted_at: c.posted_at,
                    imported: true,
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
        }
        println!(
            "{appended} labels written to {} ({already} already there); `hamgate serve` teaches them to site `{site}` at start",
            path.display(),
        );
        Ok(())
    })
}

/// One imported comment as the RPC carries it.
fn imported_label(file: &ImportedFile, c: ImportedComment) -> pb::ImportedLabel {
    let source = source(file, &c);
    let comment = c.comment;
    pb::ImportedLabel {
        check: Some(pb::CheckRequest {
            comment: Some(pb::Comment {
                content: comment.content,
                author_name: comment.author,
                author_email: comment.email,
                author_url: comment.url,
                comment_type: hamgate::grpc::convert::kind_to_proto(comment.kind) as i32,
                ..Default::default()
            }),
            client: Some(pb::Client {
                ip: comment.ip,
                user_agent: comment.user_agent,
                ..Default::default()
            }),
            ..Default::default()
        }),
        label: match c.label {
            Label::Spam => pb::Label::Spam,
            Label::Ham => pb::Label::Ham,
        } as i32,
        import_key: c.key.to_string(),
        comment_time: c.posted_at.map(|t| prost_types::Timestamp {
            seconds: i64::try_from(t).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        source,
    }
}

/// The labels in messages of at most [`BATCH`] labels and about [`BATCH_BYTES`] bytes.
fn batches(
    site: String,
    labels: impl Iterator<Item = pb::ImportedLabel>,
) -> impl Iterator<Item = pb::ImportLabelsRequest> {
    use prost::Message;
    let mut labels = labels.peekable();
    std::iter::from_fn(move || {
        labels.peek()?;
        let mut msg = pb::ImportLabelsRequest {
            site: site.clone(),
            labels: Vec::with_capacity(BATCH),
        };
        let mut bytes = 0;
        while msg.labels.len() < BATCH && bytes < BATCH_BYTES {
            let Some(l) = labels.next() else { break };
            bytes += l.encoded_len();
            msg.labels.push(l);
        }
        Some(msg)
    })
}

fn import_to_server(site: &str, addr: &str, key: &str, files: Vec<ImportedFile>) -> Result<()> {
    use futures_util::StreamExt;
    let endpoint = hamgate::grpc::endpoint::endpoint(addr).context("--addr")?;
    let total: usize = files.iter().map(|f| f.comments.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} labels sent ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let labels = files.into_iter().flat_map(|mut f| {
        let comments = std::mem::take(&mut f.comments);
        comments.into_iter().map(move |c| imported_label(&f, c))
    });
    let sent = bar.clone();
    let messages = futures_util::stream::iter(batches(site.to_string(), labels))
        .inspect(move |m| sent.inc(m.labels.len() as u64));
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {key}")
        .parse()
        .context("--key: not a valid header value")?;
    let started = std::time::Instant::now();
    let resp = super::runtime()?.block_on(async {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut client = pb::comment_filter_client::CommentFilterClient::new(channel)
            .max_encoding_message_size(usize::MAX);
        let mut request = tonic::Request::new(messages);
        request.metadata_mut().insert("authorization", auth);
        let resp = client
            .import_labels(request)
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?;
        anyhow::Ok(resp.into_inner())
    });
    bar.finish_and_clear();
    let resp = resp?;
    println!(
        "{} labels imported into site `{site}` at {addr} in {:.2}s ({} already there); its model layer learned {}",
        resp.appended,
        started.elapsed().as_secs_f64(),
        resp.already_present,
        resp.learned
    );
    Ok(())
}
