//! Talking to the server: enrolment, the display config (cached on disk, with an ETag),
//! and the heartbeat loop. Nothing here ever ends the program: a network error, a bad
//! config or a full disk is logged (once per change, not once per attempt), reported in
//! the next heartbeat, and retried with exponential backoff and jitter.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tapkit_core::kiosk_wire::{EnrollRequest, EnrollResponse, Heartbeat, HeartbeatResponse};

use crate::config::{self, Checked};
use crate::state::{Identity, StateDir};
use crate::wire::{self, WireError};

/// Version reported in heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the running kiosk knows; shared by the sync loop and the page.
#[derive(Debug)]
pub struct Live {
    /// The config on screen.
    pub config: Option<Checked>,
    /// Server clock minus ours, ms (tokens use the server's time).
    pub clock_offset_ms: i64,
    /// The last problem, reported with the next heartbeat.
    pub last_error: Option<String>,
    /// Why the server's latest config was refused; reported until a good one arrives.
    pub config_error: Option<String>,
    /// Whether the last heartbeat got through.
    pub online: bool,
    /// Heartbeats answered.
    pub heartbeats_ok: u64,
    /// Heartbeats that failed.
    pub heartbeats_failed: u64,
    /// The last check-in's answer on screen (with `run --reader`).
    pub desk: Option<crate::desk::OnScreen>,
    /// Woken whenever what the screen shows changes (the page long-polls on it).
    pub changed: Arc<tokio::sync::Notify>,
    /// Bumped whenever what the screen shows changes.
    pub screen_seq: u64,
    /// How long a check-in's answer stays on the screen (`run --checkin-secs`).
    pub desk_shown_for: Duration,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            config: None,
            clock_offset_ms: 0,
            last_error: None,
            config_error: None,
            online: false,
            heartbeats_ok: 0,
            heartbeats_failed: 0,
            desk: None,
            changed: Arc::default(),
            screen_seq: 0,
            desk_shown_for: crate::desk::SHOWN_FOR,
        }
    }
}

/// Puts a check-in's outcome on the screen and wakes the page.
pub fn show_outcome(live: &Shared, outcome: crate::desk::Outcome) {
    let mut l = write(live);
    l.screen_seq += 1;
    let seq = l.screen_seq;
    l.desk = Some(crate::desk::OnScreen {
        outcome,
        at: Instant::now(),
        seq,
    });
    let changed = l.changed.clone();
    let shown_for = l.desk_shown_for;
    drop(l);
    changed.notify_waiters();
    // Back to the usual screen when the answer has been up long enough.
    let live = live.clone();
    tokio::spawn(async move {
        tokio::time::sleep(shown_for).await;
        let mut l = write(&live);
        if l.desk.as_ref().is_some_and(|d| d.seq == seq) {
            l.desk = None;
            l.screen_seq += 1;
            let changed = l.changed.clone();
            drop(l);
            changed.notify_waiters();
        }
    });
}

/// Shared handle.
pub type Shared = Arc<RwLock<Live>>;

/// Reads the shared state, surviving a poisoned lock (a panicked reader cannot corrupt it).
pub fn read(s: &Shared) -> std::sync::RwLockReadGuard<'_, Live> {
    s.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write(s: &Shared) -> std::sync::RwLockWriteGuard<'_, Live> {
    s.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unix ms of the local clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An HTTP client with timeouts suited to a flaky counter network.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("tapkit-display-kiosk/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No answer (server down, network gone, timeout).
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered with an error; its message.
    #[error("the server said {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's `error` text.
        message: String,
    },
    /// The server answered 2xx with a body that does not read as the answer expected (a
    /// server of another version, or something else at that URL).
    #[error("the server's {what} does not read: {source}")]
    Malformed {
        /// Which answer (`enrolment answer`, `heartbeat answer`).
        what: &'static str,
        /// The field at fault.
        #[source]
        source: WireError,
    },
}

/// The body of the server's error answers: `{"error": "…", …}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

pub(crate) fn unreachable_err(e: &reqwest::Error) -> CallError {
    CallError::Unreachable(tapkit_core::error_chain(e))
}

pub(crate) async fn refused(r: reqwest::Response) -> CallError {
    let status = r.status().as_u16();
    // An error without a readable explanation is still the server's refusal.
    let message = r
        .json::<ErrorBody>()
        .await
        .map_or_else(|_| "no explanation".into(), |b| b.error);
    CallError::Refused { status, message }
}

/// Trades an enrolment code for the kiosk's identity.
pub async fn enroll(
    http: &reqwest::Client,
    server: &str,
    code: &str,
) -> Result<Identity, CallError> {
    let r = http
        .post(format!("{server}/api/kiosk/enroll"))
        .json(&EnrollRequest {
            code: code.to_owned(),
        })
        .send()
        .await
        .map_err(|e| unreachable_err(&e))?;
    if !r.status().is_success() {
        return Err(refused(r).await);
    }
    let text = r.text().await.map_err(|e| unreachable_err(&e))?;
    let answer: EnrollResponse = wire::parse(&text).map_err(|source| CallError::Malformed {
        what: "enrolment answer",
        source,
    })?;
    Ok(Identity {
        server: server.to_owned(),
        kiosk_id: answer.kiosk_id,
        secret: answer.secret,
        affiliate_code: answer.affiliate_code,
        enrolled_at_ms: now_ms(),
    })
}

pub(crate) fn bearer(id: &Identity) -> String {
    format!("Bearer kiosk.{}.{}", id.kiosk_id, id.secret)
}

/// Fetches the display config; `Ok(None)` when it is unchanged since `etag`.
pub async fn fetch_config(
    http: &reqwest::Client,
    id: &Identity,
    etag: Option<&str>,
) -> Result<Option<String>, CallError> {
    let mut req = http
        .get(format!("{}/api/kiosk/config", id.server))
        .header("Authorization", bearer(id));
    if let Some(v) = etag {
        req = req.header("If-None-Match", format!("\"{v}\""));
    }
    let r = req.send().await.map_err(|e| unreachable_err(&e))?;
    if r.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !r.status().is_success() {
        return Err(refused(r).await);
    }
    r.text().await.map(Some).map_err(|e| unreachable_err(&e))
}

/// Fetches the signed roster (`GET /api/kiosk/roster`), as text.
pub async fn fetch_roster(http: &reqwest::Client, id: &Identity) -> Result<String, CallError> {
    let r = http
        .get(format!("{}/api/kiosk/roster", id.server))
        .header("Authorization", bearer(id))
        .send()
        .await
        .map_err(|e| unreachable_err(&e))?;
    if !r.status().is_success() {
        return Err(refused(r).await);
    }
    r.text().await.map_err(|e| unreachable_err(&e))
}

/// How often the desk's roster is fetched again while the server is reachable.
pub const ROSTER_EVERY: Duration = Duration::from_secs(60);

/// The heartbeat's answer, with the server's omissions filled in.
struct Beat {
    server_time_ms: i64,
    config_version: String,
    heartbeat_secs: u64,
}

impl From<HeartbeatResponse> for Beat {
    fn from(r: HeartbeatResponse) -> Self {
        Self {
            server_time_ms: r.server_time_ms.unwrap_or_else(now_ms),
            config_version: r.config_version,
            heartbeat_secs: r.heartbeat_secs.clamp(5, 600).unsigned_abs(),
        }
    }
}

/// What this kiosk reports: its version, uptime, config on screen and last problem.
fn heartbeat_body(
    uptime: Duration,
    config_version: Option<String>,
    last_error: Option<String>,
    clock_ms: i64,
) -> Heartbeat {
    Heartbeat {
        clock_ms,
        config_version,
        last_error,
        uptime_secs: i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX),
        version: VERSION.to_owned(),
    }
}

async fn heartbeat(
    http: &reqwest::Client,
    id: &Identity,
    body: &Heartbeat,
) -> Result<Beat, CallError> {
    let r = http
        .post(format!("{}/api/kiosk/heartbeat", id.server))
        .header("Authorization", bearer(id))
        .json(body)
        .send()
        .await
        .map_err(|e| unreachable_err(&e))?;
    if !r.status().is_success() {
        return Err(refused(r).await);
    }
    let text = r.text().await.map_err(|e| unreachable_err(&e))?;
    let answer: HeartbeatResponse = wire::parse(&text).map_err(|source| CallError::Malformed {
        what: "heartbeat answer",
        source,
    })?;
    Ok(answer.into())
}

/// Applies a config fetched from the server: checked, cached, shown. A config that fails
/// its checks is refused (the last good one stays) and the reason is returned.
pub fn apply_config(live: &Shared, state: &StateDir, raw: &str) -> Result<(), String> {
    let checked =
        config::check(raw).map_err(|e| format!("refused a display config from the server: {e}"))?;
    let version = checked.config.version.clone();
    write(live).config = Some(checked);
    tracing::info!(%version, "display config applied");
    state
        .save_config(raw)
        .map_err(|e| format!("showing config {version} but could not cache it: {e}"))
}

/// Seconds to wait after `failures` failures in a row: 2, 4, 8 … capped at `cap`, with
/// ±25 % jitter so a fleet that lost the server together does not return together.
pub fn backoff(failures: u32, cap: u64) -> Duration {
    let base = 2u64.saturating_pow(failures.min(16)).min(cap.max(1)) as f64;
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX); // 0..=1
    Duration::from_secs_f64(base * (0.75 + 0.5 * r))
}

/// The sync loop: heartbeat, learn the clock offset, fetch a changed config. Runs
/// forever; every error is reported and retried.
pub async fn run(
    http: reqwest::Client,
    id: Identity,
    state: StateDir,
    live: Shared,
    max_backoff: u64,
    desk: Option<Arc<crate::desk::Desk>>,
) {
    let started = Instant::now();
    let mut roster_at: Option<Instant> = None;
    let mut failures = 0u32;
    let mut last_logged: Option<String> = None;
    loop {
        let (current, last_error) = {
            let l = read(&live);
            (
                l.config.as_ref().map(|c| c.config.version.clone()),
                // A refused config stays reported until a good one arrives.
                l.config_error.clone().or_else(|| l.last_error.clone()),
            )
        };
        let t0 = now_ms();
        let body = heartbeat_body(started.elapsed(), current.clone(), last_error.clone(), t0);
        let outcome: Result<u64, String> = async {
            let beat = heartbeat(&http, &id, &body)
                .await
                .map_err(|e| e.to_string())?;
            let t1 = now_ms();
            // Server clock minus ours, at most a day either way (a wilder answer is noise).
            let offset = beat
                .server_time_ms
                .saturating_sub(t0 / 2 + t1 / 2)
                .clamp(-86_400_000, 86_400_000);
            let previous = {
                let mut l = write(&live);
                let p = l.clock_offset_ms;
                l.clock_offset_ms = offset;
                // Reported; a problem that persists is set again below.
                if l.last_error == last_error {
                    l.last_error = None;
                }
                p
            };
            if offset.saturating_sub(previous).abs() > 1000 {
                if offset.abs() > 5000 {
                    tracing::warn!(
                        offset_ms = offset,
                        "this box's clock is off; QR tokens follow the server's clock instead"
                    );
                }
                if let Err(e) = state.save_clock_offset(offset) {
                    write(&live).last_error = Some(e.to_string());
                }
            }
            if current.as_deref() != Some(beat.config_version.as_str()) {
                match fetch_config(&http, &id, current.as_deref())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    None => {}
                    Some(raw) => {
                        if let Err(e) = apply_config(&live, &state, &raw) {
                            tracing::error!("{e}");
                            // A refused config is in config_error already; a cache failure is not.
                            if read(&live).config_error.as_deref() != Some(e.as_str()) {
                                write(&live).last_error = Some(e);
                            }
                        }
                    }
                }
            }
            if let Some(desk) = &desk
                && roster_at.is_none_or(|t| t.elapsed() >= ROSTER_EVERY)
            {
                let text = fetch_roster(&http, &id).await.map_err(|e| e.to_string())?;
                let saved = desk
                    .queues
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .save_roster(&text, id.kiosk_id);
                match saved {
                    Ok(r) => {
                        tracing::debug!(
                            version = r.version,
                            cards = r.cards.len(),
                            "roster refreshed"
                        );
                        roster_at = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::error!("refused the server's roster: {e}");
                        write(&live).last_error = Some(format!("roster refused: {e}"));
                    }
                }
            }
            Ok(beat.heartbeat_secs)
        }
        .await;
        let wait = match outcome {
            Ok(secs) => {
                if failures > 0 {
                    tracing::info!(failures, "server reachable again");
                }
                failures = 0;
                last_logged = None;
                let mut l = write(&live);
                l.online = true;
                l.heartbeats_ok += 1;
                // ±10 % jitter around the server's interval.
                let mut b = [0u8; 1];
                let _ = getrandom::fill(&mut b);
                Duration::from_secs_f64(secs as f64 * (0.9 + 0.2 * f64::from(b[0]) / 255.0))
            }
            Err(e) => {
                failures += 1;
                // Log a new problem at once, a continuing one at 1, 2, 4, 8 … failures.
                if last_logged.as_deref() != Some(e.as_str()) || failures.is_power_of_two() {
                    tracing::warn!(
                        failures,
                        "heartbeat failed: {e}; showing the last good config and retrying"
                    );
                    last_logged = Some(e.clone());
                }
                let mut l = write(&live);
                l.online = false;
                l.heartbeats_failed += 1;
                l.last_error = Some(e);
                backoff(failures, max_backoff)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_bodies_sent_are_byte_for_byte_what_json_built() {
        let uptime = Duration::from_secs(12);
        for (current, last_error) in [
            (None, None),
            (
                Some("0123456789abcdef".to_owned()),
                Some("disk \"full\"\n".to_owned()),
            ),
        ] {
            let body = heartbeat_body(
                uptime,
                current.clone(),
                last_error.clone(),
                1_767_225_600_123,
            );
            // As the loop built it before the shared types.
            let old = json!({
                "version": VERSION,
                "uptime_secs": uptime.as_secs(),
                "config_version": current,
                "last_error": last_error,
                "clock_ms": 1_767_225_600_123_i64,
            });
            assert_eq!(serde_json::to_string(&body).unwrap(), old.to_string());
        }
        let body = heartbeat_body(Duration::from_millis(1999), None, None, 5);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            format!(
                r#"{{"clock_ms":5,"config_version":null,"last_error":null,"uptime_secs":1,"version":"{VERSION}"}}"#
            )
        );
        let code = "7kq2m-9xd4p";
        let e = EnrollRequest {
            code: code.to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            json!({ "code": code }).to_string()
        );
    }

    #[test]
    fn a_terse_heartbeat_answer_gets_the_old_defaults() {
        let before = now_ms();
        let b: Beat = wire::parse::<HeartbeatResponse>("{}").unwrap().into();
        assert!(b.server_time_ms >= before, "our own clock for the server's");
        assert_eq!((b.config_version.as_str(), b.heartbeat_secs), ("", 45));
        for (secs, clamped) in [(1, 5), (60, 60), (100_000, 600), (-3, 5)] {
            let b: Beat = HeartbeatResponse {
                config_version: "v".into(),
                heartbeat_secs: secs,
                server_time_ms: Some(7),
            }
            .into();
            assert_eq!((b.server_time_ms, b.heartbeat_secs), (7, clamped), "{secs}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        for f in 1..30 {
            let d = backoff(f, 300).as_secs_f64();
            let base = 2f64.powi(f.min(16) as i32).min(300.0);
            assert!(
                d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9,
                "{f}: {d}"
            );
        }
        let samples: std::collections::HashSet<u128> =
            (0..20).map(|_| backoff(5, 300).as_millis()).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }
}
