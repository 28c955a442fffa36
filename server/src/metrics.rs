//! Prometheus metrics at `/metrics` (text exposition format 0.0.4), kept in atomics:
//! request counts and latency by route and status, clicks by channel and outcome, click
//! batch sizes, directory reloads. Hand-written rather than a metrics crate: a handful of
//! fixed series, no registry, no allocation per request once a series exists.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::tap::writer::{CHANNELS, OUTCOMES, SIZE_BUCKETS};

/// Latency bucket upper bounds, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Route pattern → status → histogram (looked up by `&str`: no allocation per request
    /// once a series exists).
    requests: RwLock<HashMap<String, HashMap<u16, Arc<Histogram>>>>,
    conversions: [AtomicU64; CONVERSION_OUTCOMES.len()],
}

/// Outcomes of conversion webhooks, in the order of `Metrics::conversions`.
pub const CONVERSION_OUTCOMES: [&str; 11] = [
    "earned",
    "pending",
    "held",
    "refused",
    "reversed",
    "awaiting_payment",
    "recorded",
    "unattributed",
    "no_commission",
    "duplicate",
    "other",
];

impl Metrics {
    /// Counts a processed conversion webhook.
    pub fn conversion(&self, outcome: &str) {
        let i = CONVERSION_OUTCOMES
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(CONVERSION_OUTCOMES.len() - 1);
        self.conversions[i].fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, route: &str, status: u16, secs: f64) {
        let found = self
            .requests
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(route)
            .and_then(|by_status| by_status.get(&status))
            .cloned();
        let h = match found {
            Some(h) => h,
            None => self
                .requests
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(route.to_owned())
                .or_default()
                .entry(status)
                .or_default()
                .clone(),
        };
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_us.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Middleware: times every request under its route pattern (`/r/{code}`, never the raw
/// path, so codes do not become label values).
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    // MatchedPath is a shared string: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let resp = next.run(req).await;
    s.metrics.observe(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn render(State(s): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    let m = &s.metrics;
    out.push_str("# HELP tapkit_http_requests_total HTTP requests by route and status.\n");
    out.push_str("# TYPE tapkit_http_requests_total counter\n");
    let series: Vec<((String, u16), Arc<Histogram>)> = m
        .requests
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .flat_map(|(route, by_status)| {
            by_status
                .iter()
                .map(move |(status, h)| ((route.clone(), *status), h.clone()))
        })
        .collect();
    let mut series = series;
    series.sort_by(|a, b| a.0.cmp(&b.0));
    for ((route, status), h) in &series {
        let _ = writeln!(
            out,
            "tapkit_http_requests_total{{route=\"{}\",status=\"{status}\"}} {}",
            escape(route),
            h.count.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP tapkit_http_request_duration_seconds Request latency by route.\n");
    out.push_str("# TYPE tapkit_http_request_duration_seconds histogram\n");
    // Merge statuses per route for the histogram.
    let mut by_route: Vec<(&str, [u64; LATENCY_BUCKETS.len()], u64, u64)> = Vec::new();
    for ((route, _), h) in &series {
        let idx = match by_route.iter().position(|r| r.0 == route) {
            Some(i) => i,
            None => {
                by_route.push((route, [0; LATENCY_BUCKETS.len()], 0, 0));
                by_route.len() - 1
            }
        };
        let r = &mut by_route[idx];
        for (i, b) in h.buckets.iter().enumerate() {
            r.1[i] += b.load(Ordering::Relaxed);
        }
        r.2 += h.count.load(Ordering::Relaxed);
        r.3 += h.sum_us.load(Ordering::Relaxed);
    }
    for (route, buckets, count, sum_us) in by_route {
        let route = escape(route);
        let mut cum = 0;
        for (le, n) in LATENCY_BUCKETS.iter().zip(buckets) {
            cum += n;
            let _ = writeln!(
                out,
                "tapkit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cum}"
            );
        }
        let _ = writeln!(
            out,
            "tapkit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tapkit_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
            sum_us as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "tapkit_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
        );
    }
    out.push_str("# HELP tapkit_clicks_total Clicks stored, by channel and outcome.\n");
    out.push_str("# TYPE tapkit_clicks_total counter\n");
    for (c, channel) in CHANNELS.iter().enumerate() {
        for (o, outcome) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "tapkit_clicks_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {}",
                s.clicks.stats().stored[c][o].load(Ordering::Relaxed)
            );
        }
    }
    out.push_str("# HELP tapkit_conversions_total Conversion webhooks processed, by outcome.\n");
    out.push_str("# TYPE tapkit_conversions_total counter\n");
    for (i, outcome) in CONVERSION_OUTCOMES.iter().enumerate() {
        let _ = writeln!(
            out,
            "tapkit_conversions_total{{outcome=\"{outcome}\"}} {}",
            m.conversions[i].load(Ordering::Relaxed)
        );
    }
    let st = s.clicks.stats();
    out.push_str("# HELP tapkit_click_batch_size Clicks per group-commit transaction.\n");
    out.push_str("# TYPE tapkit_click_batch_size histogram\n");
    let mut cum = 0;
    for (le, n) in SIZE_BUCKETS.iter().zip(&st.size_buckets) {
        cum += n.load(Ordering::Relaxed);
        let _ = writeln!(out, "tapkit_click_batch_size_bucket{{le=\"{le}\"}} {cum}");
    }
    let batches = st.batches.load(Ordering::Relaxed);
    let clicks = st.clicks.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "tapkit_click_batch_size_bucket{{le=\"+Inf\"}} {batches}"
    );
    let _ = writeln!(out, "tapkit_click_batch_size_sum {clicks}");
    let _ = writeln!(out, "tapkit_click_batch_size_count {batches}");
    out.push_str("# HELP tapkit_click_batch_size_max Largest click batch so far.\n");
    out.push_str("# TYPE tapkit_click_batch_size_max gauge\n");
    let _ = writeln!(
        out,
        "tapkit_click_batch_size_max {}",
        st.max_batch.load(Ordering::Relaxed)
    );
    out.push_str("# HELP tapkit_directory_reloads_total Loads of the /r/ directory cache.\n");
    out.push_str("# TYPE tapkit_directory_reloads_total counter\n");
    let _ = writeln!(
        out,
        "tapkit_directory_reloads_total {}",
        s.directory.reloads()
    );
    out.push_str("# HELP tapkit_directory_lookups_total Database reads for codes and card UIDs the /r/ directory did not hold (a remembered miss costs none).\n");
    out.push_str("# TYPE tapkit_directory_lookups_total counter\n");
    let _ = writeln!(
        out,
        "tapkit_directory_lookups_total {}",
        s.directory.lookups()
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
}
