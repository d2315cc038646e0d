//! The Akismet-compatible API: what every blog platform already speaks, thin over the same
//! [`App`] calls as gRPC.
//!
//! - `POST /1.1/verify-key`: `valid` or `invalid`.
//! - `POST /1.1/comment-check`: `true` (spam) or `false` (ham); `X-akismet-pro-tip: discard`
//!   for blatant spam; `X-hamgate-verdict`, `X-hamgate-probability` and `X-hamgate-check-id`
//!   say what hamgate decided (a client that knows them can do more than Akismet's two answers).
//! - `POST /1.1/submit-spam`, `/1.1/submit-ham`: a moderator's label, learned as Feedback.
//!
//! The `/1.2/` paths answer the same, and `/1.2/usage-limit` and `/1.2/key-sites` answer what
//! hamgate can say honestly: no limit, never throttled, and this month's calls, spam, ham,
//! missed spam and false positives from its own stats (plus `held`, which Akismet lacks). Bodies are form-encoded with Akismet's parameter names.
//! The API key is the site's key (the same keys as gRPC): the `api_key` field, or the older
//! `key`, or the first label of the Host header (`KEY.rest.akismet.com`, as older clients
//! address it). A site may list its `blogs`; then `blog` must be one of them.
//!
//! Akismet has two answers and hamgate three. A held comment is answered `true` by default:
//! spam is never published and, in WordPress, waits in the spam folder where a moderator can
//! rescue it (never silently dropped: held comments never get the discard tip); a site can
//! choose `akismet_hold = "ham"` instead, and WordPress's must-use plugin in
//! `deploy/wordpress` reads `X-hamgate-verdict: hold` and puts the comment in the moderation
//! queue.
//!
//! Akismet's test triggers work as documented: author `akismet-guaranteed-spam` (or that
//! e-mail) is spam, `user_role=administrator` is ham, and `is_test` never trains; a recheck
//! (`recheck_reason`) is decided again without counting or teaching twice. Errors: a missing
//! or unknown key answers `invalid` with `X-akismet-debug-help` (as Akismet does, status 200);
//! malformed input answers 400 with the field named in the body and in that header.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::{percent_decode as decode, HttpState};
use crate::app::{App, AppError, Caller, CheckInput, FeedbackInput, FeedbackTarget};
use crate::comment::{Comment, CommentKind, Label};
use crate::config::AkismetHold;
use crate::verdict::Verdict;

/// What Akismet answers a submission.
pub const THANKS: &str = "Thanks for making the web a better place.";
/// Akismet's documented test author (and e-mail) that is always spam.
pub const GUARANTEED_SPAM: &str = "akismet-guaranteed-spam";

const DEBUG_HELP: HeaderName = HeaderName::from_static("x-akismet-debug-help");
const PRO_TIP: HeaderName = HeaderName::from_static("x-akismet-pro-tip");
const VERDICT: HeaderName = HeaderName::from_static("x-hamgate-verdict");
const PROBABILITY: HeaderName = HeaderName::from_static("x-hamgate-probability");
const CHECK_ID: HeaderName = HeaderName::from_static("x-hamgate-check-id");

/// The Akismet routes, under `/1.1/` and `/1.2/`.
pub(super) fn routes() -> Router<HttpState> {
    let mut r = Router::new();
    for v in ["1.1", "1.2"] {
        r = r
            .route(&format!("/{v}/verify-key"), post(verify_key))
            .route(&format!("/{v}/comment-check"), post(comment_check))
            .route(&format!("/{v}/submit-spam"), post(submit_spam))
            .route(&format!("/{v}/submit-ham"), post(submit_ham));
    }
    r.route("/1.2/usage-limit", post(usage_limit).get(usage_limit))
        .route("/1.2/key-sites", post(key_sites).get(key_sites))
}

/// A form body's fields (the last value of a repeated name wins, as PHP reads them).
#[derive(Debug, Default)]
pub(super) struct Form(HashMap<String, String>);

impl Form {
    /// Parses `application/x-www-form-urlencoded`; values in `blog_charset` when it names
    /// ISO-8859-1 or Windows-1252 (older blogs), else UTF-8. Errors name the field.
    pub(super) fn parse(body: &[u8]) -> Result<Form, AkismetError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| AkismetError::invalid("body", "is not form-encoded ASCII"))?;
        let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8(decode(k).ok_or_else(|| {
                AkismetError::invalid("body", "bad percent-encoding in a field name")
            })?)
            .map_err(|_| AkismetError::invalid("body", "a field name is not UTF-8"))?;
            let value =
                decode(v).ok_or_else(|| AkismetError::invalid(&name, "bad percent-encoding"))?;
            raw.push((name, value));
        }
        let latin1 = raw.iter().any(|(k, v)| {
            k == "blog_charset" && {
                let c = String::from_utf8_lossy(v).to_ascii_lowercase();
                c.contains("8859-1") || c.contains("latin1") || c.contains("1252")
            }
        });
        let mut fields = HashMap::new();
        for (name, value) in raw {
            let text = match String::from_utf8(value) {
                Ok(s) => s,
                Err(e) if latin1 => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
                Err(_) => {
                    return Err(AkismetError::invalid(
                        &name,
                        "is not UTF-8 (send blog_charset for another encoding)",
                    ))
                }
            };
            fields.insert(name, text);
        }
        Ok(Form(fields))
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |s| s.trim())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(
            self.get(name).to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    }
}

/// An Akismet call that cannot be answered.
#[derive(Debug)]
pub(super) enum AkismetError {
    /// No key, or not a site's key: `invalid`, as Akismet answers.
    Key(String),
    /// Malformed input: 400 naming the field.
    Invalid(String),
    /// The service cannot answer now.
    Unavailable(String),
}

impl AkismetError {
    fn invalid(field: &str, message: &str) -> AkismetError {
        AkismetError::Invalid(format!("{field}: {message}"))
    }
}

impl From<AppError> for AkismetError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::InvalidArgument { .. } => AkismetError::Invalid(e.to_string()),
            AppError::Unauthenticated(m) | AppError::PermissionDenied(m) => AkismetError::Key(m),
            other => AkismetError::Unavailable(other.to_string()),
        }
    }
}

fn help_value(message: &str) -> HeaderValue {
    // Header values are visible ASCII; a message is ours, but may quote input.
    let clean: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(300)
        .collect();
    HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("invalid request"))
}

impl IntoResponse for AkismetError {
    fn into_response(self) -> Response {
        let (status, body, help) = match self {
            AkismetError::Key(m) => (StatusCode::OK, "invalid".to_string(), m),
            AkismetError::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone(), m),
            AkismetError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone(), m),
        };
        let mut resp = text(status, body);
        resp.headers_mut().insert(DEBUG_HELP, help_value(&help));
        resp
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The key a client sent: `api_key`, `key`, or the first label of `KEY.rest.akismet.com`.
fn key_of<'a>(form: &'a Form, headers: &'a HeaderMap) -> Option<&'a str> {
    for field in ["api_key", "key"] {
        let k = form.get(field);
        if !k.is_empty() {
            return Some(k);
        }
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.split(':').next()?;
    let (first, rest) = host.split_once('.')?;
    // Only a name with a key in front of a domain: not an IP address, not `localhost`.
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    (!is_ip && rest.contains('.') && !first.is_empty()).then_some(first)
}

/// The site a call acts for: a site's key (never the admin key, which is no site), and the
/// `blog` among the site's `blogs` when it lists any.
fn site_caller(app: &App, form: &Form, headers: &HeaderMap) -> Result<Caller, AkismetError> {
    site_caller_with(app, form, headers, true)
}

/// [`site_caller`], where `blog` may be left out (the `/1.2/` account calls take the key only).
fn site_caller_with(
    app: &App,
    form: &Form,
    headers: &HeaderMap,
    blog_required: bool,
) -> Result<Caller, AkismetError> {
    let Some(key) = key_of(form, headers) else {
        return Err(AkismetError::Key("Empty \"api_key\" value".into()));
    };
    let caller = app
        .authenticate(Some(key))
        .map_err(|_| AkismetError::Key("Invalid API key".into()))?;
    if caller.admin {
        return Err(AkismetError::Key(
            "the admin key acts for no site: use a site's key".into(),
        ));
    }
    let blogs = app.settings().sites.get(&caller.site).map(|s| &s.blogs);
    if let Some(blogs) = blogs.filter(|b| !b.is_empty()) {
        let blog = form.get("blog");
        if blog.is_empty() && !blog_required {
            return Ok(caller);
        }
        if blog.is_empty() {
            return Err(AkismetError::invalid("blog", "is required"));
        }
        if !blogs.iter().any(|b| same_blog(b, blog)) {
            return Err(AkismetError::Key(format!(
                "blog {blog} is not one of this key's blogs"
            )));
        }
    }
    Ok(caller)
}

/// Whether two blog URLs name the same blog: the host (and path) compared without scheme,
/// `www.`, case or a trailing slash.
fn same_blog(a: &str, b: &str) -> bool {
    fn norm(u: &str) -> String {
        let u = u.trim().to_ascii_lowercase();
        let u = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
        let u = u.strip_prefix("www.").unwrap_or(u);
        u.trim_end_matches('/').to_string()
    }
    norm(a) == norm(b)
}

/// Akismet's `comment_type` as hamgate's kind.
fn kind_of(t: &str) -> CommentKind {
    match t.to_ascii_lowercase().as_str() {
        "comment" | "forum-post" | "blog-post" => CommentKind::Comment,
        "reply" => CommentKind::Reply,
        "trackback" => CommentKind::Trackback,
        "pingback" => CommentKind::Pingback,
        "contact-form" | "contact_form" => CommentKind::ContactForm,
        "signup" => CommentKind::Signup,
        "message" => CommentKind::Message,
        _ => CommentKind::Unspecified,
    }
}

/// The comment a form describes, as every adapter hands it over.
fn check_input(form: &Form) -> CheckInput {
    let honeypot = match form.get("honeypot_field_name") {
        "" => String::new(),
        name => form.get(name).to_string(),
    };
    CheckInput {
        comment: Comment {
            content: form.get("comment_content").to_string(),
            author: form.get("comment_author").to_string(),
            email: form.get("comment_author_email").to_string(),
            url: form.get("comment_author_url").to_string(),
            ip: form.get("user_ip").to_string(),
            user_agent: form.get("user_agent").to_string(),
            kind: kind_of(form.get("comment_type")),
        },
        parent_id: String::new(),
        language: form.get("blog_lang").to_string(),
        permalink: form.get("permalink").to_string(),
        published_unix: 0,
        referrer: form.get("referrer").to_string(),
        honeypot,
        external_id: String::new(),
        // A recheck decides a comment seen before: it must not count or teach twice.
        is_test: form.flag("is_test") || !form.get("recheck_reason").is_empty(),
    }
}

fn guaranteed_spam(form: &Form) -> bool {
    form.get("comment_author")
        .eq_ignore_ascii_case(GUARANTEED_SPAM)
        || form
            .get("comment_author_email")
            .to_ascii_lowercase()
            .starts_with(&format!("{GUARANTEED_SPAM}@"))
}

async fn verify_key(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match Form::parse(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match site_caller(&s.app, &form, &headers) {
        Ok(_) => text(StatusCode::OK, "valid".into()),
        Err(e) => e.into_response(),
    }
}

async fn comment_check(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    match check(&s.app, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn check(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Response, AkismetError> {
    let form = Form::parse(body)?;
    let caller = site_caller(app, &form, headers)?;
    let role = form.get("user_role");
    if role.eq_ignore_ascii_case("administrator") {
        // Akismet's documented ham trigger: a site's own administrator is never spam.
        return Ok(text(StatusCode::OK, "false".into()));
    }
    let mut input = check_input(&form);
    let forced_spam = guaranteed_spam(&form);
    if forced_spam {
        // The test trigger teaches nothing.
        input.is_test = true;
    }
    let outcome = app.check(&caller, input).await?;
    let d = &outcome.decision;
    let hold_as = app.settings().akismet_hold_of(&caller.site);
    let spam = forced_spam
        || match d.verdict {
            Verdict::Reject => true,
            Verdict::Accept => false,
            Verdict::Hold => hold_as == AkismetHold::Spam,
        };
    let mut resp = text(
        StatusCode::OK,
        if spam { "true" } else { "false" }.to_string(),
    );
    let h = resp.headers_mut();
    if d.verdict == Verdict::Reject && d.discard {
        h.insert(PRO_TIP, HeaderValue::from_static("discard"));
    }
    h.insert(VERDICT, HeaderValue::from_static(d.verdict.as_str()));
    if let Ok(v) = HeaderValue::from_str(&format!("{:.4}", d.probability)) {
        h.insert(PROBABILITY, v);
    }
    if let Ok(v) = HeaderValue::from_str(&outcome.check_id) {
        h.insert(CHECK_ID, v);
    }
    Ok(resp)
}

async fn submit_spam(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    submit(&s.app, &headers, &body, Label::Spam).await
}

async fn submit_ham(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    submit(&s.app, &headers, &body, Label::Ham).await
}

async fn submit(app: &App, headers: &HeaderMap, body: &[u8], label: Label) -> Response {
    let run = async {
        let form = Form::parse(body)?;
        let caller = site_caller(app, &form, headers)?;
        if form.flag("is_test") {
            // Akismet: test calls never train.
            return Ok(());
        }
        let input = FeedbackInput {
            target: FeedbackTarget::Comment(Box::new(check_input(&form))),
            label,
            moderator: form.get("user_role").chars().take(64).collect(),
            reason: "akismet submit".into(),
        };
        app.feedback(&caller, input).await?;
        Ok::<(), AkismetError>(())
    };
    match run.await {
        Ok(()) => text(StatusCode::OK, THANKS.into()),
        Err(e) => e.into_response(),
    }
}

/// The UTC calendar month holding `t` (seconds since the epoch): its start, its end and its
/// name (`YYYY-MM`). Howard Hinnant's days-to-civil algorithm; no time crate for one date.
fn month_of(t: u64) -> (u64, u64, String) {
    let civil = |days: i64| {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    };
    let days = i64::try_from(t / 86_400).unwrap_or(0);
    let (y, m, d) = civil(days);
    let start_day = days - (d - 1);
    // The next month's first day: 32 days on from the 1st is always in the next month.
    let (_, _, nd) = civil(start_day + 32);
    let next_day = start_day + 32 - (nd - 1);
    let secs = |day: i64| u64::try_from(day).unwrap_or(0) * 86_400;
    (secs(start_day), secs(next_day), format!("{y:04}-{m:02}"))
}

/// This month's counts of the caller's site.
async fn month_counts(
    app: &App,
    caller: &Caller,
) -> Result<(String, crate::stats::Counts), AkismetError> {
    let (from, to, name) = month_of(app.now());
    let report = app
        .stats(
            caller,
            crate::app::StatsQuery {
                site: Some(caller.site.clone()),
                from: Some(from),
                to: Some(to.min(app.now() + 1)),
                step: Some(86_400),
            },
        )
        .await?;
    Ok((name, report.totals))
}

fn json(body: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn usage(app: &App, headers: &HeaderMap, form: &Form) -> Result<Response, AkismetError> {
    let caller = site_caller_with(app, form, headers, false)?;
    let (_, c) = month_counts(app, &caller).await?;
    Ok(json(&serde_json::json!({
        "limit": "none",
        "usage": c.checks(),
        "percentage": "0",
        "throttled": false,
    })))
}

async fn sites(app: &App, headers: &HeaderMap, form: &Form) -> Result<Response, AkismetError> {
    let caller = site_caller_with(app, form, headers, false)?;
    let (month, c) = month_counts(app, &caller).await?;
    let blog = app
        .settings()
        .sites
        .get(&caller.site)
        .and_then(|s| s.blogs.first().cloned())
        .unwrap_or_else(|| caller.site.clone());
    let mut body = serde_json::Map::new();
    body.insert(
        month,
        serde_json::json!([{
            "site": blog,
            "api_calls": c.checks().to_string(),
            "spam": c.reject.to_string(),
            "ham": c.accept.to_string(),
            "held": c.hold.to_string(),
            "missed_spam": c.missed_spam.to_string(),
            "false_positives": c.false_positives.to_string(),
            "is_revoked": false,
        }]),
    );
    body.insert("limit".into(), 10.into());
    body.insert("offset".into(), 0.into());
    body.insert("total".into(), 1.into());
    Ok(json(&serde_json::Value::Object(body)))
}

/// An account call's form: the POST body, or for a GET the query string.
fn account_form(body: &[u8], query: Option<&str>) -> Result<Form, AkismetError> {
    if body.is_empty() {
        Form::parse(query.unwrap_or("").as_bytes())
    } else {
        Form::parse(body)
    }
}

async fn usage_limit(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let r = async { usage(&s.app, &headers, &account_form(&body, q.as_deref())?).await };
    r.await.unwrap_or_else(IntoResponse::into_response)
}

async fn key_sites(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let r = async { sites(&s.app, &headers, &account_form(&body, q.as_deref())?).await };
    r.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_start_and_end_on_their_first_days() {
        // 2026-12-03 12:00 UTC.
        let (from, to, name) = month_of(1_796_299_200);
        assert_eq!(name, "2026-12");
        assert_eq!(from, 1_796_083_200); // 2026-12-01
        assert_eq!(to, 1_798_761_600); // 2027-01-01
        let (from, to, name) = month_of(1_709_164_800); // 2024-02-29
        assert_eq!(name, "2024-02");
        assert_eq!((from, to), (1_706_745_600, 1_709_251_200));
    }

    use super::*;

    #[test]
    fn forms_decode_plus_percent_and_latin1_when_the_blog_says_so() {
        let f = Form::parse(b"comment_content=caf%C3%A9+au+lait&key=k&empty=").unwrap();
        assert_eq!(f.get("comment_content"), "café au lait");
        assert_eq!(f.get("key"), "k");
        assert_eq!(f.get("missing"), "");
        let f = Form::parse(b"blog_charset=ISO-8859-1&comment_content=caf%E9").unwrap();
        assert_eq!(f.get("comment_content"), "café");
        let e = Form::parse(b"comment_content=caf%E9").unwrap_err();
        assert!(matches!(e, AkismetError::Invalid(m) if m.starts_with("comment_content:")));
        let e = Form::parse(b"comment_author=%G1").unwrap_err();
        assert!(matches!(e, AkismetError::Invalid(m) if m.starts_with("comment_author:")));
    }

    #[test]
    fn the_key_comes_from_the_form_or_the_host() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("abc123.rest.akismet.com"),
        );
        let f = Form::parse(b"blog=x").unwrap();
        assert_eq!(key_of(&f, &h), Some("abc123"));
        let f = Form::parse(b"api_key=k1&key=k2").unwrap();
        assert_eq!(key_of(&f, &h), Some("k1"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(key_of(&Form::default(), &h), None);
        h.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        assert_eq!(key_of(&Form::default(), &h), None);
    }

    #[test]
    fn blogs_compare_without_scheme_www_case_or_slash() {
        assert!(same_blog("https://www.Example.org/", "http://example.org"));
        assert!(same_blog("example.org/blog", "https://example.org/blog/"));
        assert!(!same_blog("example.org", "example.net"));
    }

    #[test]
    fn the_test_triggers_are_recognised() {
        let f = Form::parse(b"comment_author=akismet-guaranteed-spam").unwrap();
        assert!(guaranteed_spam(&f));
        let f = Form::parse(b"comment_author_email=akismet-guaranteed-spam%40example.com").unwrap();
        assert!(guaranteed_spam(&f));
        let f = Form::parse(b"comment_author=Ann").unwrap();
        assert!(!guaranteed_spam(&f));
        let f = Form::parse(b"recheck_reason=edit&comment_type=forum-post").unwrap();
        let input = check_input(&f);
        assert!(input.is_test);
        assert_eq!(input.comment.kind, CommentKind::Comment);
        let f = Form::parse(b"honeypot_field_name=hp&hp=filled").unwrap();
        assert_eq!(check_input(&f).honeypot, "filled");
    }
}
