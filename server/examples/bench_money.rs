//! Money-side benchmark (results in BENCHMARKS.md; run by scripts/bench-money.sh):
//!
//! 1. **Webhook throughput, end to end**: the server listens on loopback; `--clients`
//!    keep-alive HTTP/1.1 connections send signed `booking_paid` + `booking_serviced`
//!    pairs for `--bookings` attributed bookings spread over `--partners` partners.
//!    Every request goes through the socket, signature check, JSON validation and one
//!    money transaction (commission priced, ledger posted, committed).
//! 2. **Month close**: `--close-conversions` earned conversions across `--partners`
//!    partners in the previous month (fed through the same processing, in-process, to
//!    seed faster), then the time to close that month and render its CSV and PDF.
//!
//!   cargo run --release -p tapkit-server --example bench_money -- \
//!       --database-url sqlite:///tmp/b.db [--bookings 2000] [--clients 16] \
//!       [--partners 1000] [--close-conversions 100000]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::time::Instant;

use tapkit_server::config::{Config, Fraud, ProgramConfig, Secret};
use tapkit_server::money::conversions::process;
use tapkit_server::money::wire::{Event, Kind, sign};
use tapkit_server::store::{NewClick, now_ms};
use tapkit_server::{AppState, app};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const WEBHOOK: &[u8] = b"bench webhook secret 0123456789";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

async fn state(url: &str, sync: tapkit_server::store::SqliteSync) -> AppState {
    let dir = std::env::temp_dir().join(format!("tapkit-bench-money-{}", std::process::id()));
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url.to_owned(),
        data_dir: dir,
        rate_limit_per_hour: 0,
        sqlite_synchronous: sync,
        program: ProgramConfig {
            fraud: Fraud {
                review_every: 0,
                max_per_ip_per_day: 0,
                max_per_email_domain_per_day: 0,
                ..Fraud::default()
            },
            ..ProgramConfig::default()
        },
        webhook_secret: Some(Secret(WEBHOOK.to_vec())),
        sun_keys: None,
        public_url: "http://127.0.0.1".into(),
        smtp_url: None,
        mail_from: "Tapkit <no-reply@example.com>".into(),
        trusted_proxies: Default::default(),
    };
    AppState::new(config, b"bench server secret bench server secret")
        .await
        .expect("the database must be reachable")
}

/// Creates `partners` affiliates and one attributed click each at `at`; returns
/// (affiliate id, token) pairs.
async fn partners(s: &AppState, n: usize, at: i64) -> Vec<(i64, String)> {
    let mut out = Vec::with_capacity(n);
    let mut clicks = Vec::with_capacity(n);
    for i in 0..n {
        let a = s
            .store
            .create_affiliate(s.program.id, &format!("Partner {i}"), "business", None)
            .await
            .unwrap();
        clicks.push(NewClick {
            at,
            code: a.code.clone(),
            affiliate_id: Some(a.id),
            channel: "nfc",
            card_id: None,
            counter: None,
            user_agent: None,
            referer: None,
            ip_hash: format!("{i:032x}"),
            outcome: "attributed",
            reason: None,
            rate_limit: false,
            check_counter: false,
            utm: None,
        });
        out.push((a.id, String::new()));
    }
    let ids = s.store.allocate_click_ids(n as i64).await.unwrap();
    let ids: Vec<i64> = ids.collect();
    for (chunk, idc) in clicks.chunks_mut(500).zip(ids.chunks(500)) {
        s.store.insert_clicks(chunk, idc, 0).await.unwrap();
    }
    for (o, id) in out.iter_mut().zip(&ids) {
        o.1 = s.keys.sign_attribution(*id, at);
    }
    out
}

fn body(kind: &str, booking: usize, at: i64, token: Option<&str>) -> String {
    let occurred = tapkit_core::date::rfc3339(u64::try_from(at / 1000).unwrap());
    let mut v = serde_json::json!({
        "event_id": format!("{kind}-{booking}"),
        "kind": kind,
        "booking_id": format!("bk-{booking}"),
        "occurred_at": occurred,
        "customer_id": format!("c-{booking}"),
    });
    if kind == "booking_paid" {
        v["amount_minor"] = serde_json::json!(10_000 + (booking % 50) * 1000);
        v["currency"] = serde_json::json!("USD");
        v["attribution"] = serde_json::json!(token.unwrap_or_default());
    }
    v.to_string()
}

async fn post(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    body: &str,
) -> (u16, String) {
    let sig = sign(body.as_bytes(), WEBHOOK, now_ms() / 1000);
    let req = format!(
        "POST /api/conversions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nTapkit-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(req.as_bytes()).await.unwrap();
    let mut status = String::new();
    r.read_line(&mut status).await.unwrap();
    let code: u16 = status.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).await.unwrap();
    (code, String::from_utf8_lossy(&buf).into_owned())
}

async fn webhook_throughput(url: &str, bookings: usize, clients: usize, n_partners: usize) {
    let s = state(url, tapkit_server::store::SqliteSync::Full).await;
    let at = now_ms() - 3_600_000;
    let ps = partners(&s, n_partners, at).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(s.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let ps = std::sync::Arc::new(ps);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let ps = ps.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            let mut lat = Vec::new();
            let mut earned = 0;
            for b in (c..bookings).step_by(clients) {
                let (_, token) = &ps[b % ps.len()];
                for kind in ["booking_paid", "booking_serviced"] {
                    let body = body(kind, b, at + 60_000 + 1000, Some(token));
                    let t = Instant::now();
                    let (code, resp) = post(&mut w, &mut r, &body).await;
                    lat.push(t.elapsed().as_micros() as u64);
                    assert_eq!(code, 200, "{resp}");
                    if resp.contains("\"outcome\":\"earned\"") {
                        earned += 1;
                    }
                }
            }
            (lat, earned)
        }));
    }
    let mut lat = Vec::new();
    let mut earned = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        earned += e;
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    let events = lat.len();
    println!(
        "webhook: {events} events ({bookings} bookings, {earned} earned) over {clients} connections in {secs:.2} s: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms",
        events as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
    let txns = s.store.ledger(s.program.id).await.unwrap().len();
    println!("ledger transactions: {txns} (one per earned booking)");
}

async fn month_close(url: &str, conversions: usize, n_partners: usize) {
    // Seeding is not what is measured: on SQLite it runs with synchronous=NORMAL.
    let s = state(url, tapkit_server::store::SqliteSync::Normal).await;
    let (start, _) = {
        let cur = tapkit_core::date::month_of_ms(now_ms());
        let (cur_start, _) = tapkit_core::date::parse_month(&cur).unwrap();
        tapkit_core::date::parse_month(&tapkit_core::date::month_of_ms(cur_start - 1)).unwrap()
    };
    let prev = tapkit_core::date::month_of_ms(start);
    let ps = partners(&s, n_partners, start + 60_000).await;
    let seed = Instant::now();
    for b in 0..conversions {
        let (_, token) = &ps[b % ps.len()];
        let at = start + 120_000 + (b as i64 % 20) * 86_400_000;
        for (kind, k) in [
            (Kind::BookingPaid, "booking_paid"),
            (Kind::BookingServiced, "booking_serviced"),
        ] {
            let ev = Event {
                event_id: format!("{k}-{b}"),
                kind,
                action: None,
                booking_id: format!("bk-{b}"),
                occurred_at: at,
                amount_minor: (kind == Kind::BookingPaid)
                    .then_some(10_000 + (b as i64 % 50) * 1000),
                currency: Some("USD".into()),
                customer_id: Some(format!("c-{b}")),
                email_sha256: None,
                phone_sha256: None,
                email_domain: None,
                attribution: (kind == Kind::BookingPaid).then(|| token.clone()),
            };
            let out = process(&s, &ev, now_ms()).await.unwrap();
            assert!(
                out.outcome == "pending" || out.outcome == "earned",
                "{out:?}"
            );
        }
        if b > 0 && b % 10_000 == 0 {
            eprintln!("  seeded {b} conversions");
        }
    }
    println!(
        "seeded {conversions} earned conversions across {n_partners} partners in {:.1} s",
        seed.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let report = tapkit_server::money::payouts::close(&s, &prev, now_ms())
        .await
        .unwrap();
    let close = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let csv = tapkit_server::money::payouts::csv(&report).unwrap();
    let csv_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let lines = s
        .store
        .period_commissions(s.program.id, &prev)
        .await
        .unwrap();
    let pdf = tapkit_server::money::payouts::pdf(&report, "bench", &lines);
    let pdf_s = t.elapsed().as_secs_f64();
    let total: i64 = report.lines.iter().map(|l| l.payout_minor).sum();
    println!(
        "month close {prev}: {:.2} s for {} payout lines (total {}); CSV {:.3} s ({} bytes); PDF {:.2} s ({} bytes)",
        close,
        report.lines.len(),
        tapkit_server::money::payouts::money(total, "USD"),
        csv_s,
        csv.len(),
        pdf_s,
        pdf.len()
    );
}

#[tokio::main]
async fn main() {
    let url = arg("--database-url", "sqlite:///tmp/tapkit-bench-money.db");
    let bookings: usize = arg("--bookings", "2000").parse().unwrap();
    let clients: usize = arg("--clients", "16").parse().unwrap();
    let n_partners: usize = arg("--partners", "1000").parse().unwrap();
    let close_n: usize = arg("--close-conversions", "0").parse().unwrap();
    if close_n > 0 {
        month_close(&url, close_n, n_partners).await;
    } else {
        webhook_throughput(&url, bookings, clients, n_partners).await;
    }
}
