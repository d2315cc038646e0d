//! Proto messages to domain inputs and back. A missing required message is INVALID_ARGUMENT
//! naming it; unknown enum values fall back to "unspecified" rather than failing, so old
//! servers accept new clients.

use super::pb;
use crate::app::{AppError, CheckInput, CheckOutcome, FeedbackInput, FeedbackOutcome};
use crate::app::{StatsQuery, StatsReport};
use crate::comment::{Comment, CommentKind, Label};
use crate::policy::{ReasonKind, Verdict};
use crate::stats::Counts;

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
                kind: kind_from_proto(comment.r#type),
            },
            parent_id: comment.parent_id,
            language: comment.language,
            permalink: post.permalink,
            published_unix: post.published_unix,
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
        let label = match pb::Label::try_from(req.label).unwrap_or(pb::Label::Unspecified) {
            pb::Label::Spam => Label::Spam,
            pb::Label::Ham => Label::Ham,
            pb::Label::Unspecified => {
                return Err(AppError::InvalidArgument {
                    field: "label".into(),
                    message: "must be LABEL_SPAM or LABEL_HAM".into(),
                })
            }
        };
        let comment = req
            .comment
            .map(|c| CheckInput::try_from(c).map_err(|e| e.in_field("comment")))
            .transpose()?;
        Ok(FeedbackInput {
            check_id: req.check_id,
            comment,
            label,
            moderator: req.moderator_id,
            reason: req.reason,
        })
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

impl From<pb::GetStatsRequest> for StatsQuery {
    fn from(r: pb::GetStatsRequest) -> Self {
        let some = |v: u64| (v != 0).then_some(v);
        StatsQuery {
            site: Some(r.site).filter(|s| !s.is_empty()),
            from: some(r.from),
            to: some(r.to),
            step: some(r.step),
        }
    }
}

impl From<&Counts> for pb::StatsCounts {
    fn from(c: &Counts) -> Self {
        let latency_ms = match (
            c.latency.quantile_ms(0.5),
            c.latency.quantile_ms(0.9),
            c.latency.quantile_ms(0.99),
        ) {
            (Some(p50), Some(p90), Some(p99)) => Some(pb::LatencyPercentiles { p50, p90, p99 }),
            _ => None,
        };
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
            from: r.range.from,
            to: r.range.to,
            step: r.range.step.secs(),
            model: Some(pb::StatsModel {
                version: r.model.version,
                created_at: r.model.created_at,
                accept_below: r.model.accept_below,
                reject_at: r.model.reject_at,
            }),
            buckets: r
                .buckets
                .iter()
                .map(|(start, c)| pb::StatsBucket {
                    start: *start,
                    counts: Some(c.into()),
                })
                .collect(),
            totals: Some((&r.totals).into()),
            spam_rate: r.totals.spam_rate(),
        }
    }
}
