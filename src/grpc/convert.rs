//! Proto messages to domain inputs and back. A missing required message is INVALID_ARGUMENT
//! naming it; unknown enum values fall back to "unspecified" rather than failing, so old
//! servers accept new clients. Times are `google.protobuf.Timestamp`/`Duration` on the wire and
//! whole seconds in the domain.

use super::pb;
use crate::app::{AppError, CheckInput, CheckOutcome, FeedbackInput, FeedbackOutcome};
use crate::app::{
    FeedbackTarget, ImportItem, ImportOutcome, ModelInfo, SiteModelInfo, StatsQuery, StatsReport,
    ThresholdsSource,
};
use crate::comment::{Comment, CommentKind, Label};
use crate::policy::ReasonKind;
use crate::stats::Counts;
use crate::verdict::Verdict;

impl TryFrom<pb::CheckRequest> for CheckInput {
    type Error = AppError;

    fn try_from(req: pb::CheckRequest) -> Result<Self, Self::Error> {
        let comment = req.comment.ok_or_else(|| AppError::InvalidArgument {
            field: "comment".into(),
            message: "is required".into(),
        })?;
        let post = req.post.unwrap_or_default();
        let client = req.client.unwrap_or_default();
        Ok(CheckInput {
            comment: Comment {
                content: comment.content,
                author: comment.author_name,
                email: comment.author_email,
                url: comment.author_url,
                ip: client.ip,
                user_agent: client.user_agent,
                kind: kind_from_proto(comment.comment_type),
            },
            parent_id: comment.parent_id,
            language: comment.language,
            permalink: post.permalink,
            published_unix: post.publish_time.map_or(0, |t| t.seconds),
            referrer: client.referrer,
            honeypot: client.honeypot,
            external_id: req.external_id,
            is_test: req.is_test,
        })
    }
}

fn kind_from_proto(v: i32) -> CommentKind {
    use pb::CommentType as T;
    match T::try_from(v).unwrap_or(T::Unspecified) {
        T::Unspecified => CommentKind::Unspecified,
        T::Comment => CommentKind::Comment,
        T::Reply => CommentKind::Reply,
        T::Trackback => CommentKind::Trackback,
        T::Pingback => CommentKind::Pingback,
        T::ContactForm => CommentKind::ContactForm,
        T::Signup => CommentKind::Signup,
        T::Message => CommentKind::Message,
    }
}

/// The proto comment type of a domain kind (for clients that send comments they read).
pub fn kind_to_proto(k: CommentKind) -> pb::CommentType {
    use pb::CommentType as T;
    match k {
        CommentKind::Unspecified => T::Unspecified,
        CommentKind::Comment => T::Comment,
        CommentKind::Reply => T::Reply,
        CommentKind::Trackback => T::Trackback,
        CommentKind::Pingback => T::Pingback,
        CommentKind::ContactForm => T::ContactForm,
        CommentKind::Signup => T::Signup,
        CommentKind::Message => T::Message,
    }
}

/// The proto value of a verdict.
pub fn verdict_to_proto(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Accept => pb::Verdict::Accept,
        Verdict::Hold => pb::Verdict::Hold,
        Verdict::Reject => pb::Verdict::Reject,
    }
}

fn reason_kind_to_proto(k: ReasonKind) -> pb::ReasonKind {
    match k {
        ReasonKind::TextToken => pb::ReasonKind::TextToken,
        ReasonKind::Reputation => pb::ReasonKind::Reputation,
        ReasonKind::Rule => pb::ReasonKind::Rule,
    }
}

impl From<CheckOutcome> for pb::CheckResponse {
    fn from(o: CheckOutcome) -> Self {
        pb::CheckResponse {
            verdict: verdict_to_proto(o.decision.verdict) as i32,
            spam_probability: o.decision.probability,
            reasons: o
                .decision
                .reasons
                .into_iter()
                .map(|r| pb::Reason {
                    kind: reason_kind_to_proto(r.kind) as i32,
                    label: r.label,
                    log_odds: r.log_odds,
                })
                .collect(),
            discard: o.decision.discard,
            model_version: o.model_version,
            check_id: o.check_id,
            degraded: o.degraded,
            external_id: o.external_id,
        }
    }
}

/// The domain kind of a proto comment type name, for the CLI client (`--type trackback`).
pub fn comment_type_from_name(name: &str) -> Option<pb::CommentType> {
    Some(match name {
        "comment" => pb::CommentType::Comment,
        "reply" => pb::CommentType::Reply,
        "trackback" => pb::CommentType::Trackback,
        "pingback" => pb::CommentType::Pingback,
        "contact-form" | "contact_form" => pb::CommentType::ContactForm,
        "signup" => pb::CommentType::Signup,
        "message" => pb::CommentType::Message,
        _ => return None,
    })
}

impl TryFrom<pb::FeedbackRequest> for FeedbackInput {
    type Error = AppError;

    fn try_from(req: pb::FeedbackRequest) -> Result<Self, Self::Error> {
        let label = label_from_proto(req.label)?;
        use pb::feedback_request::Target;
        let target = match req.target {
            Some(Target::CheckId(id)) => FeedbackTarget::CheckId(id),
            Some(Target::Check(c)) => FeedbackTarget::Comment(Box::new(
                CheckInput::try_from(c).map_err(|e| e.in_field("check"))?,
            )),
            None => {
                return Err(AppError::InvalidArgument {
                    field: "target".into(),
                    message: "is required: the check_id of a recent check, or the check itself"
                        .into(),
                })
            }
        };
        Ok(FeedbackInput {
            target,
            label,
            moderator: req.moderator_id,
            reason: req.reason,
        })
    }
}

/// A label; LABEL_UNSPECIFIED (or an unknown value) is INVALID_ARGUMENT naming `label`.
fn label_from_proto(v: i32) -> Result<Label, AppError> {
    match pb::Label::try_from(v).unwrap_or(pb::Label::Unspecified) {
        pb::Label::Spam => Ok(Label::Spam),
        pb::Label::Ham => Ok(Label::Ham),
        pb::Label::Unspecified => Err(invalid("label", "must be LABEL_SPAM or LABEL_HAM")),
    }
}

impl TryFrom<pb::ImportedLabel> for ImportItem {
    type Error = AppError;

    fn try_from(l: pb::ImportedLabel) -> Result<Self, Self::Error> {
        let check = l.check.ok_or_else(|| invalid("check", "is required"))?;
        Ok(ImportItem {
            check: CheckInput::try_from(check).map_err(|e| e.in_field("check"))?,
            label: label_from_proto(l.label)?,
            key: l.import_key,
            posted_at: l
                .comment_time
                .map(|t| secs_since_epoch("comment_time", &t, false))
                .transpose()?,
            source: l.source,
        })
    }
}

impl From<ImportOutcome> for pb::ImportLabelsResponse {
    fn from(o: ImportOutcome) -> Self {
        pb::ImportLabelsResponse {
            appended: o.appended,
            already_present: o.already_present,
            learned: o.learned,
        }
    }
}

impl From<FeedbackOutcome> for pb::FeedbackResponse {
    fn from(o: FeedbackOutcome) -> Self {
        pb::FeedbackResponse {
            label_seq: o.label_seq,
            learned: o.learned,
            note: o.note,
        }
    }
}

impl TryFrom<pb::GetStatsRequest> for StatsQuery {
    type Error = AppError;

    fn try_from(r: pb::GetStatsRequest) -> Result<Self, Self::Error> {
        let step = r
            .step
            .map(|d| match (u64::try_from(d.seconds), d.nanos) {
                (Ok(secs), 0) => Ok(secs),
                _ => Err(invalid(
                    "step",
                    "must be whole seconds: 60 s, 3600 s or 86400 s",
                )),
            })
            .transpose()?;
        Ok(StatsQuery {
            site: Some(r.site).filter(|s| !s.is_empty()),
            from: r
                .start_time
                .map(|t| secs_since_epoch("start_time", &t, false))
                .transpose()?,
            // The end is exclusive: a fraction of a second ends after that second.
            to: r
                .end_time
                .map(|t| secs_since_epoch("end_time", &t, true))
                .transpose()?,
            step,
        })
    }
}

/// Whole seconds since the epoch of a timestamp, rounded down (or up, `ceil`). Before the epoch
/// is INVALID_ARGUMENT naming `field`.
fn secs_since_epoch(field: &str, t: &prost_types::Timestamp, ceil: bool) -> Result<u64, AppError> {
    let secs = u64::try_from(t.seconds)
        .map_err(|_| invalid(field, format!("{} s is before 1970", t.seconds)))?;
    Ok(if ceil && t.nanos > 0 {
        secs.saturating_add(1)
    } else {
        secs
    })
}

/// A stats range error from the domain, which names its fields as the HTTP query does
/// (`from`, `to`), in the gRPC request's names (`start_time`, `end_time`).
pub fn stats_error_to_proto(e: AppError) -> AppError {
    match e {
        AppError::InvalidArgument { field, message } => {
            let field = match field.as_str() {
                "from" => "start_time".to_string(),
                "to" => "end_time".to_string(),
                _ => field,
            };
            AppError::InvalidArgument {
                field,
                message: message.replace("`to`", "`end_time`"),
            }
        }
        other => other,
    }
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::InvalidArgument {
        field: field.into(),
        message: message.into(),
    }
}

/// A time in whole seconds since the epoch, as a timestamp.
fn timestamp(secs: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// A span in whole seconds, as a duration.
fn duration(secs: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

impl From<ModelInfo> for pb::GetModelInfoResponse {
    fn from(i: ModelInfo) -> Self {
        pb::GetModelInfoResponse {
            version: i.version,
            create_time: Some(timestamp(i.created_at)),
            train_ham: i.train_docs[0],
            train_spam: i.train_docs[1],
            features: i.features as u64,
            accept_below: i.accept_below,
            reject_at: i.reject_at,
            metrics_json: i.metrics_json,
            site_labels: i.site_labels,
            sites: i.sites.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SiteModelInfo> for pb::SiteModelInfo {
    fn from(s: SiteModelInfo) -> Self {
        let source = match s.thresholds_source {
            ThresholdsSource::NewSite => pb::ThresholdsSource::NewSite,
            ThresholdsSource::Model => pb::ThresholdsSource::Model,
            ThresholdsSource::Fitted => pb::ThresholdsSource::Fitted,
            ThresholdsSource::Configured => pb::ThresholdsSource::Configured,
        };
        pb::SiteModelInfo {
            site: s.site,
            layer: s.layer,
            labels_ham: s.labels_learned[0],
            labels_spam: s.labels_learned[1],
            min_learns: s.min_learns,
            learning: s.learning,
            thresholds_source: source.into(),
            accept_below: s.accept_below,
            reject_at: s.reject_at,
        }
    }
}

impl From<&Counts> for pb::StatsCounts {
    fn from(c: &Counts) -> Self {
        let latency_ms = c.latency.percentiles_ms().map(|p| pb::LatencyPercentiles {
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
        });
        pb::StatsCounts {
            checks: c.checks(),
            accept: c.accept,
            hold: c.hold,
            reject: c.reject,
            degraded: c.degraded,
            feedback_spam: c.feedback_spam,
            feedback_ham: c.feedback_ham,
            false_positives: c.false_positives,
            missed_spam: c.missed_spam,
            latency_ms,
        }
    }
}

impl From<StatsReport> for pb::GetStatsResponse {
    fn from(r: StatsReport) -> Self {
        pb::GetStatsResponse {
            site: r.site.unwrap_or_default(),
            sites: r.sites,
            start_time: Some(timestamp(r.range.from)),
            end_time: Some(timestamp(r.range.to)),
            step: Some(duration(r.range.step.secs())),
            model: Some(pb::StatsModel {
                version: r.model.version,
                create_time: Some(timestamp(r.model.created_at)),
                accept_below: r.model.accept_below,
                reject_at: r.model.reject_at,
            }),
            buckets: r
                .buckets
                .iter()
                .map(|(start, c)| pb::StatsBucket {
                    start_time: Some(timestamp(*start)),
                    counts: Some(c.into()),
                })
                .collect(),
            totals: Some((&r.totals).into()),
            spam_rate: r.totals.spam_rate(),
        }
    }
}
