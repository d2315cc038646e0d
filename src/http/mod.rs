//! The HTTP adapter: the stats JSON API, Prometheus `/metrics`, `/healthz` and `/readyz`, and
//! the dashboard page, all thin over [`crate::app::App`] (the same calls the gRPC adapter
//! makes, so both speak with one voice).
//!
//! - `GET /api/v1/stats?site=&from=&to=&step=`: `Authorization: Bearer <key>` (the gRPC
//!   keys); 400 with `{"error": "<field>: <message>"}` for a bad parameter, 401 for a
//!   missing or unknown key, 403 for a site that is not the caller's.
//! - `GET /metrics`: this process's counters in the Prometheus text format; on its own
//!   listener when `metrics_addr` is set, behind a bearer key when `metrics_key_sha256` is.
//! - `GET /healthz`: 200 while the process runs. `GET /readyz`: 200 once serving with a model
//!   loaded, 503 while shutting down or while the configured Redis is down.
//! - `GET /`, `/app.js`, `/style.css`: the dashboard, built into the binary (no CDN), under a
//!   Content-Security-Policy that allows this origin only. The page is public; its data
//!   needs a key.
//!
//! - `POST /1.1/verify-key`, `/1.1/comment-check`, `/1.1/submit-spam`, `/1.1/submit-ham` (and
//!   `/1.2/`): the Akismet-compatible API, see [`akismet`].
//!
//! Apart from Akismet's forms (bounded by `limits.max_message_bytes`), requests have no bodies
//! worth reading (a body limit of 4 KiB is set anyway), the query string is bounded, and no
//! input can make a handler panic.

mod akismet;
pub mod metrics;

use std::future::{Future, IntoFuture};

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app::{App, AppError, Caller, StatsQuery, StatsReport};
use crate::stats::{Counts, Step};

/// The Content-Security-Policy of every response: scripts, styles, images and API calls from
/// this origin only; no framing, no plugins, no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The longest query string accepted.
const MAX_QUERY_BYTES: usize = 2048;

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");

#[derive(Clone)]
struct HttpState {
    app: App,
    /// SHA-256 (hex, lowercase) of the key `/metrics` requires, if any.
    metrics_key: Option<String>,
}

/// The main router: dashboard, stats API, health, and `/metrics` when `with_metrics`.
pub fn router(app: App, metrics_key: Option<String>, with_metrics: bool) -> Router {
    let state = HttpState { app, metrics_key };
    let mut r = Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/v1/stats", get(stats))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if with_metrics {
        r = r.route("/metrics", get(metrics));
    }
    // Akismet's form bodies carry whole comments; the rest need no body.
    let max_body = state.app.limits().max_message_bytes;
    r.layer(DefaultBodyLimit::max(4096))
        .merge(akismet::routes().layer(DefaultBodyLimit::max(max_body)))
        .fallback(not_found)
        .with_state(state)
}

/// The router of a separate metrics listener: `/metrics` and the health endpoints.
pub fn metrics_router(app: App, metrics_key: Option<String>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(4096))
        .with_state(HttpState { app, metrics_key })
}

/// Serves the HTTP side on `http` (and `/metrics` on `metrics` when given) until `shutdown`
/// completes; in-flight requests finish first.
pub async fn serve(
    app: App,
    http: TcpListener,
    metrics: Option<TcpListener>,
    metrics_key: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = crate::shutdown::Shutdown::on(shutdown);
    tracing::info!(addr = ?http.local_addr().ok(), "serving HTTP (dashboard, stats API, health)");
    let main = axum::serve(
        http.tap_io(nodelay),
        router(app.clone(), metrics_key.clone(), metrics.is_none()),
    )
    .with_graceful_shutdown(shutdown.stopped())
    .into_future();
    match metrics {
        Some(m) => {
            tracing::info!(addr = ?m.local_addr().ok(), "serving /metrics");
            let side = axum::serve(m.tap_io(nodelay), metrics_router(app, metrics_key))
                .with_graceful_shutdown(shutdown.stopped())
                .into_future();
            tokio::try_join!(main, side)?;
        }
        None => main.await?,
    }
    Ok(())
}

/// Small request/response pairs: without TCP_NODELAY, Nagle's algorithm meets the client's
/// delayed ACK and a response can stall for 40 ms.
fn nodelay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(cause = %e, "TCP_NODELAY not set");
    }
}

/// An [`AppError`] as an HTTP response: the one mapping from application errors to statuses.
#[derive(Debug)]
struct HttpError(AppError);

impl From<AppError> for HttpError {
    fn from(e: AppError) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            AppError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::FailedPrecondition(_) => StatusCode::CONFLICT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut resp = json_response(status, &json!({ "error": self.0.to_string() }));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn invalid(field: &str, message: impl Into<String>) -> HttpError {
    HttpError(AppError::InvalidArgument {
        field: field.into(),
        message: message.into(),
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The bearer key of the request: `None` without an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| crate::config::bearer_key(v.as_bytes()))
        .transpose()
        .map_err(|e| HttpError(AppError::Unauthenticated(e.to_string())))
}

fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, HttpError> {
    Ok(app.authenticate(bearer(headers)?)?)
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn url_decode(field: &str, s: &str) -> Result<String, HttpError> {
    let bytes = percent_decode(s).ok_or_else(|| invalid(field, "bad percent-encoding"))?;
    String::from_utf8(bytes).map_err(|_| invalid(field, "is not UTF-8"))
}

/// The bytes of one percent-encoded form component (`+` is a space), or `None` when malformed.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    Some(out)
}

/// Parses the stats query string; errors name the parameter.
fn parse_stats_query(raw: Option<&str>) -> Result<StatsQuery, HttpError> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            "query",
            format!("{} bytes is over the limit of {MAX_QUERY_BYTES}", raw.len()),
        ));
    }
    let mut q = StatsQuery::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = url_decode("query", k)?;
        let field = k.as_str();
        let v = url_decode(field, v)?;
        let seconds = |v: &str| {
            v.trim().parse::<u64>().map_err(|_| {
                invalid(
                    field,
                    format!("`{v}` is not a time in seconds since the epoch"),
                )
            })
        };
        match field {
            "site" => q.site = Some(v),
            "from" => q.from = Some(seconds(&v)?),
            "to" => q.to = Some(seconds(&v)?),
            "step" => {
                let step = Step::parse(&v).ok_or_else(|| {
                    invalid(
                        "step",
                        format!("`{v}` is not minute, hour, day, 60, 3600 or 86400"),
                    )
                })?;
                q.step = Some(step.secs());
            }
            // Unknown parameters are ignored, as HTTP APIs usually do (cache busters).
            _ => {}
        }
    }
    Ok(q)
}

/// Milliseconds rounded to microseconds, so the JSON stays short.
fn ms(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn counts_json(c: &Counts) -> serde_json::Map<String, Value> {
    let latency = match c.latency.percentiles_ms() {
        Some(p) => json!({ "p50": ms(p.p50), "p90": ms(p.p90), "p99": ms(p.p99) }),
        None => Value::Null,
    };
    let mut m = serde_json::Map::new();
    m.insert("checks".into(), c.checks().into());
    m.insert("accept".into(), c.accept.into());
    m.insert("hold".into(), c.hold.into());
    m.insert("reject".into(), c.reject.into());
    m.insert("degraded".into(), c.degraded.into());
    m.insert("feedback_spam".into(), c.feedback_spam.into());
    m.insert("feedback_ham".into(), c.feedback_ham.into());
    m.insert("false_positives".into(), c.false_positives.into());
    m.insert("missed_spam".into(), c.missed_spam.into());
    m.insert("latency_ms".into(), latency);
    m
}

/// The JSON contract of `/api/v1/stats` (the dashboard is written against these names).
pub fn report_json(r: &StatsReport) -> Value {
    let buckets: Vec<Value> = r
        .buckets
        .iter()
        .map(|(start, c)| {
            let mut m = serde_json::Map::new();
            m.insert("start".into(), (*start).into());
            m.extend(counts_json(c));
            Value::Object(m)
        })
        .collect();
    let mut totals = counts_json(&r.totals);
    totals.insert("spam_rate".into(), r.totals.spam_rate().into());
    json!({
        "site": r.site,
        "sites": r.sites,
        "from": r.range.from,
        "to": r.range.to,
        "step": r.range.step.secs(),
        "model": {
            "version": r.model.version,
            "created_at": r.model.created_at,
            "accept_below": r.model.accept_below,
            "reject_at": r.model.reject_at,
            "sites": r.model.sites,
        },
        "buckets": buckets,
        "totals": totals,
    })
}

async fn stats(
    State(s): State<HttpState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let caller = caller(&s.app, &headers)?;
    let query = parse_stats_query(raw.as_deref())?;
    let report = s.app.stats(&caller, query).await?;
    Ok(json_response(StatusCode::OK, &report_json(&report)))
}

async fn metrics(State(s): State<HttpState>, headers: HeaderMap) -> Result<Response, HttpError> {
    if let Some(want) = &s.metrics_key {
        let ok = bearer(&headers)?.is_some_and(|k| crate::config::hash_key(k) == *want);
        if !ok {
            return Err(HttpError(AppError::Unauthenticated(
                "/metrics needs its bearer key".into(),
            )));
        }
    }
    let counters = s.app.process_counters();
    let text = metrics::render(&metrics::Snapshot {
        by_site: counters.snapshot(),
        model_version: s.app.model_version(),
        reputation_errors: counters.reputation_errors(),
        stats_errors: s.app.stats_store_errors(),
    });
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        "ok\n",
    )
        .into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    let (status, first) = if !s.app.is_serving() {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving")
    } else if s.app.uses_redis() && !s.app.stats_healthy() {
        (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable")
    } else {
        (StatusCode::OK, "ready")
    };
    // Notices do not make the service unready (it serves and keeps every valid label), but an
    // operator polling readiness should see them.
    let mut body = format!("{first}\n");
    for notice in s.app.notices() {
        body.push_str("notice: ");
        body.push_str(&notice);
        body.push('\n');
    }
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({ "error": "not found" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<StatsQuery, HttpError>) -> String {
        match r {
            Err(HttpError(e)) => e.to_string(),
            Ok(q) => panic!("parsed: {q:?}"),
        }
    }

    #[test]
    fn stats_query_parses_and_names_bad_fields() {
        let q = parse_stats_query(Some("site=my%20blog&from=10&to=20&step=hour&x=1")).unwrap();
        assert_eq!(q.site.as_deref(), Some("my blog"));
        assert_eq!((q.from, q.to, q.step), (Some(10), Some(20), Some(3600)));
        assert_eq!(parse_stats_query(None).unwrap(), StatsQuery::default());
        assert!(err(parse_stats_query(Some("from=yesterday"))).starts_with("from: "));
        assert!(err(parse_stats_query(Some("to=-1"))).starts_with("to: "));
        assert!(err(parse_stats_query(Some("step=week"))).starts_with("step: "));
        assert!(err(parse_stats_query(Some("site=%zz"))).starts_with("site: "));
        assert!(err(parse_stats_query(Some("site=%"))).starts_with("site: "));
        assert!(err(parse_stats_query(Some("site=%ff"))).starts_with("site: "));
        let long = format!("site={}", "a".repeat(3000));
        assert!(err(parse_stats_query(Some(&long))).starts_with("query: "));
    }
}
