//! The decision policy: text score, reputation and rules in, verdict with reasons out.
//!
//! Everything is combined in log-odds of spam, where independent evidence adds:
//!
//! 1. **Text**: the model's calibrated log-odds.
//! 2. **Reputation**: for each identifier with history (IP, network, e-mail, e-mail domain, author
//!    URL host, repeated content), `weight(kind) * ln((spam + 0.5) / (ham + 0.5))` over its
//!    decayed counts, each clamped to ±[`PER_IDENTITY_CAP`], all together clamped to
//!    ±`reputation_cap` (default 4) so that history can tip a borderline comment but never
//!    outvote the text of a clearly good or clearly bad one. The weights are in
//!    [`IdentityKind::weight`]: an exact IP, e-mail address or repeated text is strong evidence
//!    (0.6-0.8), a shared /24 or mail provider weak (0.2-0.25).
//! 3. **Rules**: a filled honeypot field rejects and discards the comment whatever else is said
//!    (no person fills a field they cannot see; its score is raised to at least the discard
//!    level); more links than the site allows turns an accept into a hold.
//!
//! Two thresholds split the sum: below `accept_below` a comment is published, at or above
//! `reject_at` it is rejected, and in between it is held for a moderator. They are chosen on
//! validation data at training time ([`crate::model::calibration::choose_thresholds`]) and
//! written into the model; a site may override them. A rejected comment more than
//! `discard_margin` above the reject threshold is flagged `discard`: blatant, safe to drop unseen.

use serde::Serialize;

use crate::comment::Label;
use crate::model::{TextScore, TokenEvidence};
use crate::reputation::{IdentityKind, Tally};
// The verdict and thresholds are shared words (the model stores thresholds, stats count
// verdicts), so they live on the ground floor; re-exported here, where callers look for them.
use crate::verdict::sigmoid;
pub use crate::verdict::{Thresholds, Verdict};

/// Largest push one identifier's history can give, in log-odds.
pub const PER_IDENTITY_CAP: f64 = 2.5;
/// What a filled honeypot adds, in log-odds.
pub const HONEYPOT_LOG_ODDS: f64 = 10.0;
/// Most reasons a decision lists.
pub const MAX_REASONS: usize = 8;

/// What kind of evidence a reason is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// A token of the text.
    TextToken,
    /// The sender's history.
    Reputation,
    /// A rule.
    Rule,
}

/// One piece of evidence behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// What kind of evidence.
    pub kind: ReasonKind,
    /// What it is, e.g. `word:subscribe`, `reputation:ip`, `rule:honeypot`.
    pub label: String,
    /// Its push towards spam, in log-odds.
    pub log_odds: f64,
}

/// A site's policy: thresholds and limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SitePolicy {
    /// Decision thresholds.
    pub thresholds: Thresholds,
    /// More links than this hold a comment.
    pub max_links: u32,
    /// Cap on the total reputation evidence.
    pub reputation_cap: f64,
    /// Log-odds above the reject threshold from which a rejected comment is marked discard.
    pub discard_margin: f64,
}

/// Everything the policy decides on.
#[derive(Debug, Clone)]
pub struct Signals<'a> {
    /// The text score.
    pub text: TextScore,
    /// The strongest text tokens.
    pub text_reasons: &'a [TokenEvidence],
    /// The comment's identifiers and their tallies from everyone's checks; `None` when the
    /// store was unavailable.
    pub reputation: Option<&'a [(IdentityKind, Tally)]>,
    /// The same identifiers' tallies from this site's own moderators' feedback.
    pub site_reputation: Option<&'a [(IdentityKind, Tally)]>,
    /// Links in the comment.
    pub links: u32,
    /// Whether the honeypot field was filled.
    pub honeypot_filled: bool,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// The combined log-odds of spam.
    pub log_odds: f64,
    /// The combined spam probability.
    pub probability: f64,
    /// The strongest evidence, rules first, then by magnitude.
    pub reasons: Vec<Reason>,
    /// Blatant spam, safe to drop unseen.
    pub discard: bool,
}

/// The reputation evidence of one identifier's tally, or `None` when it has no history.
pub fn reputation_log_odds(kind: IdentityKind, tally: Tally) -> Option<f64> {
    if tally.spam + tally.ham < 0.5 {
        return None;
    }
    let raw = ((tally.spam + 0.5) / (tally.ham + 0.5)).ln() * kind.weight();
    Some(raw.clamp(-PER_IDENTITY_CAP, PER_IDENTITY_CAP))
}

/// Decides; see the module docs.
pub fn decide(policy: &SitePolicy, signals: &Signals<'_>) -> Decision {
    let mut rules = Vec::new();
    let mut evidence: Vec<Reason> = signals
        .text_reasons
        .iter()
        .map(|t| Reason {
            kind: ReasonKind::TextToken,
            label: t.label.clone(),
            log_odds: t.log_odds,
        })
        .collect();

    let mut reputation = 0.0;
    for &(kind, tally) in signals.reputation.unwrap_or(&[]) {
        if let Some(lo) = reputation_log_odds(kind, tally) {
            reputation += lo;
            evidence.push(Reason {
                kind: ReasonKind::Reputation,
                label: format!("reputation:{}", kind.as_str()),
                log_odds: lo,
            });
        }
    }
    for &(kind, tally) in signals.site_reputation.unwrap_or(&[]) {
        if let Some(lo) = reputation_log_odds(kind, tally) {
            reputation += lo;
            evidence.push(Reason {
                kind: ReasonKind::Reputation,
                label: format!("reputation:{} (this site's moderators)", kind.as_str()),
                log_odds: lo,
            });
        }
    }
    let reputation = reputation.clamp(-policy.reputation_cap, policy.reputation_cap);

    let mut log_odds = signals.text.log_odds + reputation;
    if signals.honeypot_filled {
        // No person fills a field they cannot see, so this is a rule, not evidence to weigh:
        // whatever the text says (a bot can post "ok"), the comment is rejected and discarded,
        // and the score says so too.
        log_odds = (log_odds + HONEYPOT_LOG_ODDS)
            .max(policy.thresholds.reject_at + policy.discard_margin.max(0.0));
        rules.push(Reason {
            kind: ReasonKind::Rule,
            label: "rule:honeypot".into(),
            log_odds: HONEYPOT_LOG_ODDS,
        });
    }
    let mut verdict = policy.thresholds.decide(log_odds);
    if signals.honeypot_filled {
        verdict = Verdict::Reject;
    }
    if signals.links > policy.max_links {
        if verdict == Verdict::Accept {
            verdict = Verdict::Hold;
        }
        rules.push(Reason {
            kind: ReasonKind::Rule,
            label: format!(
                "rule:too-many-links ({} > {})",
                signals.links, policy.max_links
            ),
            log_odds: 0.0,
        });
    }
    let discard = verdict == Verdict::Reject
        && (signals.honeypot_filled
            || log_odds >= policy.thresholds.reject_at + policy.discard_margin);

    evidence.sort_by(|a, b| {
        b.log_odds
            .abs()
            .total_cmp(&a.log_odds.abs())
            .then_with(|| a.label.cmp(&b.label))
    });
    rules.extend(evidence);
    rules.truncate(MAX_REASONS);
    Decision {
        verdict,
        log_odds,
        probability: sigmoid(log_odds),
        reasons: rules,
        discard,
    }
}

/// What a check teaches its sender's reputation, if anything.
///
/// A verdict becomes history only when the text alone says the same: a comment rejected only
/// because of its sender's history must not add to that history, or reputation would feed on
/// itself. A filled honeypot is independent evidence of a bot and teaches spam whatever the
/// text says (and never ham). Held comments teach nothing until a moderator decides.
pub fn teaches(decision: &Decision, text_verdict: Verdict, honeypot_filled: bool) -> Option<Label> {
    match (decision.verdict, text_verdict) {
        (Verdict::Reject, _) if honeypot_filled => Some(Label::Spam),
        _ if honeypot_filled => None,
        (Verdict::Reject, Verdict::Reject) => Some(Label::Spam),
        (Verdict::Accept, Verdict::Accept) => Some(Label::Ham),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SitePolicy {
        SitePolicy {
            thresholds: Thresholds {
                accept_below: -1.0,
                reject_at: 2.0,
            },
            max_links: 2,
            reputation_cap: 4.0,
            discard_margin: 3.0,
        }
    }

    fn text(log_odds: f64) -> TextScore {
        TextScore {
            raw_log_odds: log_odds,
            log_odds,
            links: 0,
        }
    }

    #[test]
    fn reputation_tips_a_borderline_comment_but_is_capped() {
        let rep = [(
            IdentityKind::Ip,
            Tally {
                spam: 20.0,
                ham: 0.0,
            },
        )];
        let s = Signals {
            text: text(0.0),
            text_reasons: &[],
            reputation: Some(&rep),
            site_reputation: None,
            links: 0,
            honeypot_filled: false,
        };
        let d = decide(&policy(), &s);
        // 0.6 * ln(20.5 / 0.5) = 2.23 > reject_at 2.0.
        assert_eq!(d.verdict, Verdict::Reject);
        assert_eq!(d.reasons[0].label, "reputation:ip");
        let many: Vec<_> = [
            IdentityKind::Ip,
            IdentityKind::Email,
            IdentityKind::Content,
            IdentityKind::UrlHost,
        ]
        .into_iter()
        .map(|k| {
            (
                k,
                Tally {
                    spam: 0.0,
                    ham: 1000.0,
                },
            )
        })
        .collect();
        let s = Signals {
            text: text(5.0),
            text_reasons: &[],
            reputation: Some(&many),
            site_reputation: None,
            links: 0,
            honeypot_filled: false,
        };
        let d = decide(&policy(), &s);
        assert!(
            (d.log_odds - 1.0).abs() < 1e-9,
            "capped at -4: {}",
            d.log_odds
        );
    }

    #[test]
    fn honeypot_rejects_and_discards_and_links_hold() {
        let s = Signals {
            text: text(-5.0),
            text_reasons: &[],
            reputation: None,
            site_reputation: None,
            links: 0,
            honeypot_filled: true,
        };
        let d = decide(&policy(), &s);
        assert_eq!((d.verdict, d.discard), (Verdict::Reject, true));
        assert_eq!(d.reasons[0].label, "rule:honeypot");
        let s = Signals {
            text: text(-5.0),
            text_reasons: &[],
            reputation: None,
            site_reputation: None,
            links: 3,
            honeypot_filled: false,
        };
        let d = decide(&policy(), &s);
        assert_eq!((d.verdict, d.discard), (Verdict::Hold, false));
        assert!(d.reasons[0].label.starts_with("rule:too-many-links"));
    }

    #[test]
    fn a_filled_honeypot_rejects_and_discards_the_hammiest_text_and_teaches_only_spam() {
        let good = [(
            IdentityKind::Email,
            Tally {
                spam: 0.0,
                ham: 50.0,
            },
        )];
        for text_lo in [-40.0, -9.0, -1.0, 0.0, 1.9, 30.0] {
            let s = Signals {
                text: text(text_lo),
                text_reasons: &[],
                reputation: Some(&good),
                site_reputation: None,
                links: 5,
                honeypot_filled: true,
            };
            let d = decide(&policy(), &s);
            assert_eq!(
                (d.verdict, d.discard),
                (Verdict::Reject, true),
                "text {text_lo}"
            );
            assert!(d.log_odds >= 2.0 + 3.0, "text {text_lo}: {}", d.log_odds);
            assert!(d.probability > 0.99, "text {text_lo}");
            assert_eq!(d.reasons[0].label, "rule:honeypot");
            let text_verdict = policy().thresholds.decide(text_lo);
            assert_eq!(teaches(&d, text_verdict, true), Some(Label::Spam));
        }
    }

    #[test]
    fn a_verdict_teaches_only_when_the_text_agrees() {
        let d = |verdict| Decision {
            verdict,
            log_odds: 0.0,
            probability: 0.5,
            reasons: Vec::new(),
            discard: false,
        };
        use Verdict::*;
        assert_eq!(teaches(&d(Reject), Reject, false), Some(Label::Spam));
        assert_eq!(teaches(&d(Accept), Accept, false), Some(Label::Ham));
        // Rejected or accepted only because of reputation: no feedback loop.
        assert_eq!(teaches(&d(Reject), Hold, false), None);
        assert_eq!(teaches(&d(Reject), Accept, false), None);
        assert_eq!(teaches(&d(Accept), Hold, false), None);
        assert_eq!(teaches(&d(Hold), Hold, false), None);
        assert_eq!(teaches(&d(Hold), Accept, false), None);
        // A honeypot never teaches ham.
        assert_eq!(teaches(&d(Accept), Accept, true), None);
    }
}
