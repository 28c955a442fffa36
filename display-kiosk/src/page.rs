//! The local page the kiosk browser shows: one HTML document with the fonts, and the
//! frame as inline SVG that a few lines of script refresh every few seconds (new token,
//! new config, a resized window). Everything is served from this process, so the screen
//! keeps working while the network is down.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use tapkit_core::kiosk::{sign, step_at};

use crate::config;
use crate::frame::{self, Frame, Pad, esc};
use crate::sync::{Shared, VERSION, now_ms, read};

/// Seconds between the page's refreshes of the frame.
pub const REFRESH_SECS: u64 = 5;

/// What the page needs.
#[derive(Clone)]
pub struct Page {
    /// Shared live state.
    pub live: Shared,
    /// The kiosk id.
    pub kiosk_id: i64,
    /// Its secret (signs the QR tokens).
    pub secret: Arc<Vec<u8>>,
    /// Where the pad is.
    pub pad: Pad,
    /// When the kiosk started.
    pub started: Instant,
    /// The front desk, with `run --reader`.
    pub desk: Option<Arc<crate::desk::Desk>>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("kiosk_id", &self.kiosk_id)
            .finish_non_exhaustive()
    }
}

/// The frame at this moment: the current token under the server's clock.
pub fn current_frame(
    live: &Shared,
    kiosk_id: i64,
    secret: &[u8],
    pad: Pad,
    w: u32,
    h: u32,
) -> Frame {
    let l = read(live);
    if let Some(d) = l
        .desk
        .as_ref()
        .filter(|d| d.at.elapsed() < l.desk_shown_for)
    {
        let content = crate::desk::content(&d.outcome, pad);
        let seq = d.seq;
        drop(l);
        let mut f = frame::layout(&content, w, h);
        f.checkin = Some(seq);
        return f;
    }
    let content = match &l.config {
        Some(c) => {
            let step = step_at(
                now_ms().saturating_add(l.clock_offset_ms),
                c.config.rotation_secs,
            );
            c.content(&sign(secret, kiosk_id, step), pad)
        }
        None => config::waiting(pad, "Waiting for the display settings from the server"),
    };
    drop(l);
    frame::layout(&content, w, h)
}

/// The routes (`desk`: with `run --reader`, for the status page).
pub fn routes(mut page: Page, desk: Option<Arc<crate::desk::Desk>>) -> Router {
    page.desk = desk;
    Router::new()
        .route("/", get(index))
        .route("/frame.svg", get(frame_svg))
        .route("/font/bold.ttf", get(|| async { font(frame::BOLD_TTF) }))
        .route(
            "/font/regular.ttf",
            get(|| async { font(frame::REGULAR_TTF) }),
        )
        .route("/status", get(status))
        .route("/changes", get(changes))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(page)
}

fn font(bytes: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "font/ttf"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

async fn index(State(p): State<Page>) -> Response {
    let f = current_frame(&p.live, p.kiosk_id, &p.secret, p.pad, 1920, 1080);
    let title = read(&p.live).config.as_ref().map_or_else(
        || "Tapkit display".to_owned(),
        |c| c.config.brand_name.clone(),
    );
    let bg = read(&p.live).config.as_ref().map_or_else(
        || "#0b2545".to_owned(),
        |c| c.config.colors.background.clone(),
    );
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>
@font-face{{font-family:TapkitSans;font-weight:400;src:url(/font/regular.ttf) format("truetype")}}
@font-face{{font-family:TapkitSans;font-weight:700;src:url(/font/bold.ttf) format("truetype")}}
html,body{{margin:0;height:100%;overflow:hidden;background:{bg};cursor:none}}
main{{position:fixed;inset:0}}
main svg{{display:block;width:100vw;height:100vh}}
.pulse{{animation:pulse 1.6s ease-in-out infinite;transform-box:fill-box;transform-origin:center}}
@keyframes pulse{{0%,100%{{opacity:1;transform:scale(1)}}50%{{opacity:.6;transform:scale(.86)}}}}
@media (prefers-reduced-motion:reduce){{.pulse{{animation:none}}}}
</style>
<noscript><meta http-equiv="refresh" content="{refresh}"></noscript>
</head><body><main id="frame">{svg}</main>
<script>
(function () {{
  var box = document.getElementById('frame'), shown = '';
  function load() {{
    var w = window.innerWidth, h = window.innerHeight;
    fetch('/frame.svg?w=' + w + '&h=' + h, {{cache: 'no-store'}})
      .then(function (r) {{ return r.ok ? r.text() : Promise.reject(r.status); }})
      .then(function (svg) {{ if (svg !== shown) {{ box.innerHTML = svg; shown = svg; }} }})
      .catch(function () {{}});
  }}
  load();
  setInterval(load, {refresh_ms});
  window.addEventListener('resize', load);
  // A check-in's answer shows at once: wait on the kiosk for the screen to change.
  var seq = -1;
  function watch() {{
    fetch('/changes?since=' + seq, {{cache: 'no-store'}})
      .then(function (r) {{ return r.ok ? r.text() : Promise.reject(r.status); }})
      .then(function (t) {{ var n = parseInt(t, 10); if (n !== seq) {{ seq = n; load(); }} watch(); }})
      .catch(function () {{ setTimeout(watch, 1000); }});
  }}
  watch();
}})();
</script></body></html>
"#,
        title = esc(&title),
        bg = esc(&bg),
        svg = f.svg(),
        refresh = REFRESH_SECS,
        refresh_ms = REFRESH_SECS * 1000,
    );
    let mut r = Html(html).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize)]
struct Size {
    w: Option<u32>,
    h: Option<u32>,
}

async fn frame_svg(
    State(p): State<Page>,
    q: Result<Query<Size>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // A malformed size is not worth an error on a customer-facing screen: use the default.
    let (w, h) = q.map_or((1920, 1080), |Query(s)| {
        (s.w.unwrap_or(1920), s.h.unwrap_or(1080))
    });
    let (w, h) = (w.clamp(160, 7680), h.clamp(160, 7680));
    let f = current_frame(&p.live, p.kiosk_id, &p.secret, p.pad, w, h);
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        f.svg(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Since {
    since: Option<i64>,
}

/// `GET /changes?since=N`: answers the screen's sequence number as soon as it differs
/// from `N` (a check-in shown, or gone), or after 25 s.
async fn changes(
    State(p): State<Page>,
    q: Result<Query<Since>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let since = q.ok().and_then(|Query(s)| s.since);
    let changed = read(&p.live).changed.clone();
    let notified = changed.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let now = i64::try_from(read(&p.live).screen_seq).unwrap_or(i64::MAX);
    if since != Some(now) {
        return now.to_string().into_response();
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(25), notified).await;
    let now = read(&p.live).screen_seq;
    ([(header::CACHE_CONTROL, "no-store")], now.to_string()).into_response()
}

async fn status(State(p): State<Page>) -> Response {
    let (queued, rejected, unreadable, roster) = match &p.desk {
        Some(d) => {
            let q = d
                .queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                Some(q.len()),
                Some(q.rejected()),
                Some(q.unreadable()),
                q.roster().map(|r| json!({"version": r.version, "expires_at_ms": r.expires_at_ms, "cards": r.cards.len()})),
            )
        }
        None => (None, None, None, None),
    };
    let l = read(&p.live);
    let desk = l.desk.as_ref().map(|d| {
        let (result, reason, member, offline) = match &d.outcome {
            crate::desk::Outcome::Welcome { member, offline } => {
                ("welcome", None, Some(member), *offline)
            }
            crate::desk::Outcome::Refused {
                reason,
                member,
                offline,
            } => ("refused", Some(reason.clone()), member.as_ref(), *offline),
            crate::desk::Outcome::Problem(why) => ("problem", Some(why.clone()), None, false),
        };
        json!({
            "seq": d.seq,
            "result": result,
            "reason": reason,
            "offline": offline,
            "member": member,
            "shown_ms": d.at.elapsed().as_millis() as u64,
        })
    });
    axum::Json(json!({
        "kiosk_id": p.kiosk_id,
        "version": VERSION,
        "uptime_secs": p.started.elapsed().as_secs(),
        "config_version": l.config.as_ref().map(|c| c.config.version.clone()),
        "online": l.online,
        "last_error": l.last_error,
        "config_error": l.config_error,
        "clock_offset_ms": l.clock_offset_ms,
        "heartbeats_ok": l.heartbeats_ok,
        "heartbeats_failed": l.heartbeats_failed,
        "checkin": desk,
        "checkin_queue": queued,
        "checkin_rejected": rejected,
        "checkin_unreadable": unreadable,
        "roster": roster,
    }))
    .into_response()
}
