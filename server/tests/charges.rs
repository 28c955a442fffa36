//! Charging members through the brand's payment system, with the real processes: the
//! sample booking app (`deploy/sample-site/booking_app.py`) as the payment system, and
//! Python's SMTP server process receiving the dunning emails. On SQLite and PostgreSQL:
//! a charge that succeeds settles the invoice; a card that declines makes the member
//! past due, is retried on days 3, 7 and 14, and recovers or lapses; a lost answer is
//! retried with the same idempotency key and charges once; two replicas running the
//! charges at once move the schedule once and send one email.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tapkit_core::date::parse_date;
use tapkit_server::config::ProgramConfig;
use tapkit_server::members::charges::{ChargeRun, PaymentsConfig, run};
use tapkit_server::members::service::{Join, join};

/// A child process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on {port}");
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The sample booking app, as the payment system.
fn processor(dir: &std::path::Path, tapkit: u16) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .arg(repo().join("deploy/sample-site/booking_app.py"))
        .env("BOOKING_APP_LISTEN", format!("127.0.0.1:{port}"))
        .env("TAPKIT_URL", format!("http://127.0.0.1:{tapkit}"))
        .env("BOOKING_APP_STATE", dir.join("processor.json"))
        .env(
            "TAPKIT_WEBHOOK_SECRET",
            std::str::from_utf8(WEBHOOK).unwrap(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the sample booking app");
    let p = Proc(child);
    wait_for(port, "the booking app");
    (p, port)
}

/// Python's SMTP server process (`smtpd`'s DebuggingServer prints each message).
fn smtp_server(dir: &std::path::Path) -> (Proc, u16, std::path::PathBuf) {
    let port = free_port();
    let out = dir.join("smtp.out");
    let child = Command::new("python3")
        .args([
            "-u",
            "-W",
            "ignore",
            "-m",
            "smtpd",
            "-n",
            "-c",
            "DebuggingServer",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs its SMTP server");
    let p = Proc(child);
    wait_for(port, "the SMTP server");
    (p, port, out)
}

/// The messages the SMTP server received: headers as sent, the body decoded from
/// quoted-printable (the server prints each line as a Python bytes literal).
fn mails(out: &std::path::Path) -> Vec<String> {
    let mut text = String::new();
    std::fs::File::open(out)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text.split("---------- MESSAGE FOLLOWS ----------")
        .skip(1)
        .map(|m| {
            let lines: Vec<String> = m
                .split("------------ END MESSAGE ------------")
                .next()
                .unwrap()
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("b'")
                        .or_else(|| l.strip_prefix("b\""))
                        .map(|l| l[..l.len() - 1].replace("\\'", "'"))
                })
                .collect();
            let blank = lines
                .iter()
                .position(String::is_empty)
                .unwrap_or(lines.len());
            let (head, body) = lines.split_at(blank);
            format!(
                "{}\n\n{}",
                head.join("\n"),
                quoted_printable(&body.join("\n"))
            )
        })
        .collect()
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'=', Some(v)) = (b[i], hex) {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn staff(port: u16, path: &str) -> serde_json::Value {
    let c = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}{path}");
    let r = if path == "/staff/payments" {
        c.get(url).send().await.unwrap()
    } else {
        c.post(url).send().await.unwrap()
    };
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn noon(date: &str) -> i64 {
    parse_date(date).unwrap() * 86_400_000 + 12 * 3_600_000
}

fn day(date: &str) -> i64 {
    parse_date(date).unwrap()
}

struct World {
    s: Server,
    pay: u16,
    smtp_out: std::path::PathBuf,
    _procs: (Proc, Proc),
}

async fn world(backend: Backend) -> Option<World> {
    let dir = std::env::temp_dir().join(format!("tapkit-charges-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    // Tapkit listens too: the payment system sends it the events of pending charges.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (pp, pay) = processor(&dir, listener.local_addr().unwrap().port());
    let (sp, smtp, smtp_out) = smtp_server(&dir);
    let path = repo().join("server/tapkit.sample.toml");
    let membership = tapkit_server::config::load(Some(&path))
        .unwrap()
        .program
        .membership;
    let payments = PaymentsConfig {
        charge_url: Some(format!("http://127.0.0.1:{pay}/payments/charge")),
        update_payment_url: Some(
            "https://book.example.com/account/card?customer={customer_id}".into(),
        ),
        backoff_ms: 20,
        ..PaymentsConfig::default()
    };
    payments.check(true).unwrap();
    let s = server_with_mail(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            membership,
            payments,
            ..ProgramConfig::default()
        },
        Some(format!("smtp://127.0.0.1:{smtp}")),
    )
    .await?;
    let app = tapkit_server::app(s.state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Some(World {
        s,
        pay,
        smtp_out,
        _procs: (pp, sp),
    })
}

impl World {
    async fn join(&self, customer: &str, plan: &str, date: &str) -> i64 {
        let st = &self.s.state;
        join(
            &st.store,
            &st.config.program.membership,
            st.program.id,
            "USD",
            &Join {
                customer_id: customer,
                email: &format!("{customer}@example.com"),
                plan,
                affiliate_id: None,
                first_name: None,
            },
            noon(date),
        )
        .await
        .unwrap()
        .0
        .id
    }

    async fn charge(&self, date: &str) -> ChargeRun {
        run(&self.s.state, noon(date)).await.unwrap()
    }

    async fn member(&self, id: i64) -> (String, Option<String>, Option<i64>, i64) {
        let m = self.s.state.store.member(id).await.unwrap().unwrap();
        (m.status, m.status_reason, m.failed_on, m.retries)
    }

    async fn invoices(&self, id: i64) -> Vec<(String, String, i64)> {
        self.s
            .state
            .store
            .member_invoices(id, false)
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.status, i.reference.unwrap_or_default(), i.charge_failures))
            .collect()
    }
}

async fn a_declined_card_is_retried_on_the_schedule_then_recovers_or_lapses(backend: Backend) {
    let Some(w) = world(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let bo = w.join("cus_bo", "basic", "2026-11-01").await;
    let cy = w.join("cus_cy", "plus", "2026-11-01").await;
    staff(w.pay, "/staff/customers/cus_bo/declines").await;
    staff(w.pay, "/staff/customers/cus_cy/declines").await;

    // 1 November: Bo's and Cy's cards decline.
    let r = w.charge("2026-11-01").await;
    assert_eq!((r.succeeded, r.failed, r.emailed), (0, 2, 2), "{r:?}");
    let nov1 = day("2026-11-01");
    assert_eq!(w.member(bo).await, ("past_due".into(), None, Some(nov1), 0));
    assert_eq!(w.invoices(bo).await[0].0, "failed");

    // Nothing is due before the third day.
    assert_eq!(w.charge("2026-11-03").await, ChargeRun::default());
    // Day 3: both retries fail; two replicas run at once and record it once.
    // A second replica: its own state and connections, the same database.
    let other = tapkit_server::AppState::new(w.s.state.config.clone(), SECRET)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        run(&w.s.state, noon("2026-11-04")),
        run(&other, noon("2026-11-04"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.failed + b.failed, a.emailed + b.emailed),
        (2, 2),
        "{a:?} {b:?}"
    );
    assert_eq!(w.member(bo).await.3, 1);
    assert_eq!(w.member(cy).await.3, 1);

    // Bo fixes the card: the day-7 retry succeeds and Bo is active for the same period.
    staff(w.pay, "/staff/customers/cus_bo/card-ok").await;
    let r = w.charge("2026-11-08").await;
    assert_eq!((r.succeeded, r.failed), (1, 1), "{r:?}");
    assert_eq!(w.member(bo).await, ("active".into(), None, None, 0));
    let bo_inv = &w.invoices(bo).await[0];
    assert_eq!((bo_inv.0.as_str(), bo_inv.2), ("paid", 2));

    // Cy's day-14 retry fails too: lapsed, for payment_failed.
    assert_eq!(w.charge("2026-11-14").await, ChargeRun::default());
    let r = w.charge("2026-11-15").await;
    assert_eq!((r.failed, r.lapsed, r.emailed), (1, 1, 1), "{r:?}");
    assert_eq!(
        w.member(cy).await,
        (
            "lapsed".into(),
            Some("payment_failed".into()),
            Some(nov1),
            2
        )
    );
    // Ana joins on the 16th and her card works: charged at once, nothing else is due.
    let ana = w.join("cus_ana", "plus", "2026-11-16").await;
    let r = w.charge("2026-11-16").await;
    assert_eq!((r.succeeded, r.failed), (1, 0), "{r:?}");
    let ana_inv = &w.invoices(ana).await[0];
    assert_eq!((ana_inv.0.as_str(), ana_inv.2), ("paid", 0));
    assert!(
        ana_inv.1.starts_with("pay_"),
        "the processor's reference: {ana_inv:?}"
    );
    assert_eq!(w.charge("2026-11-30").await, ChargeRun::default());

    // The payment system charged each attempt once, under its own key.
    let charges = staff(w.pay, "/staff/payments").await;
    let mut keys: Vec<&String> = charges.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 1 + 3 + 4, "{charges}");
    let bo_first = w.s.state.store.member_invoices(bo, false).await.unwrap()[0].id;
    for attempt in 1..=3 {
        let key = format!("tapkit-invoice-{bo_first}-attempt-{attempt}");
        let c = &charges[&key];
        assert_eq!(c["customer_id"], "cus_bo", "{key}: {charges}");
        assert_eq!(
            c["status"],
            if attempt == 3 { "succeeded" } else { "failed" }
        );
    }

    // Six dunning emails: Bo twice, Cy four times (the last one says it ended), each
    // with the link to update the card.
    let m = mails(&w.smtp_out);
    assert_eq!(m.len(), 2 + 4, "{m:#?}");
    let to_bo: Vec<&String> = m
        .iter()
        .filter(|t| t.contains("To: cus_bo@example.com"))
        .collect();
    assert_eq!(to_bo.len(), 2);
    assert!(to_bo[0].contains("customer=cus_bo"), "{}", to_bo[0]);
    assert!(
        to_bo[0].contains("We will try again on 2026-11-04"),
        "{}",
        to_bo[0]
    );
    assert!(to_bo[0].contains("usable until 2026-11-07"), "{}", to_bo[0]);
    assert!(
        to_bo[1].contains("We will try again on 2026-11-08"),
        "{}",
        to_bo[1]
    );
    let to_cy: Vec<&String> = m
        .iter()
        .filter(|t| t.contains("To: cus_cy@example.com"))
        .collect();
    assert_eq!(to_cy.len(), 4);
    assert!(to_cy[3].contains("has ended"), "{}", to_cy[3]);
}

async fn a_lost_answer_is_asked_again_and_charges_once(backend: Backend) {
    let Some(w) = world(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let di = w.join("cus_di", "premium", "2026-11-10").await;
    staff(w.pay, "/staff/payments/lose-next").await;
    let r = w.charge("2026-11-10").await;
    assert_eq!(r.succeeded, 1, "{r:?}");
    assert_eq!(w.invoices(di).await[0].0, "paid");
    let charges = staff(w.pay, "/staff/payments").await;
    assert_eq!(
        charges.as_object().unwrap().len(),
        1,
        "charged once: {charges}"
    );
    assert!(mails(&w.smtp_out).is_empty());
    // The payment system takes no unsigned request.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/payments/charge", w.pay))
        .body(r#"{"idempotency_key":"x","customer_id":"cus_di","amount_minor":100}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    // A second run finds nothing to charge.
    assert_eq!(w.charge("2026-11-11").await, ChargeRun::default());
}

async fn a_pending_charge_is_settled_by_the_signed_event(backend: Backend) {
    let Some(w) = world(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let ed = w.join("cus_ed", "plus", "2026-11-10").await;
    let fy = w.join("cus_fy", "basic", "2026-11-10").await;
    for p in [
        "/staff/customers/cus_ed/async",
        "/staff/customers/cus_fy/async",
        "/staff/customers/cus_fy/declines",
    ] {
        staff(w.pay, p).await;
    }
    // The payment system answers 202 to both, and again when asked again.
    for _ in 0..2 {
        let r = w.charge("2026-11-10").await;
        assert_eq!(
            r,
            ChargeRun {
                pending: 2,
                ..ChargeRun::default()
            }
        );
    }
    assert_eq!(w.invoices(ed).await[0].0, "open");
    let charges = staff(w.pay, "/staff/payments").await;
    assert_eq!(charges.as_object().unwrap().len(), 2, "{charges}");

    // The charges settle: the payment system sends Tapkit the signed events.
    let answers = staff(w.pay, "/staff/payments/settle-pending").await;
    let ed_inv = w.s.state.store.member_invoices(ed, false).await.unwrap()[0].clone();
    let fy_inv = w.s.state.store.member_invoices(fy, false).await.unwrap()[0].clone();
    let ed_key = format!("tapkit-invoice-{}-attempt-1", ed_inv.id);
    let fy_key = format!("tapkit-invoice-{}-attempt-1", fy_inv.id);
    assert_eq!(answers[&ed_key]["http"], 200, "{answers}");
    assert_eq!(answers[&ed_key]["status"], "processed", "{answers}");
    assert_eq!(answers[&ed_key]["invoice_status"], "paid", "{answers}");
    assert_eq!(answers[&fy_key]["status"], "processed", "{answers}");
    assert_eq!(answers[&fy_key]["invoice_status"], "failed", "{answers}");
    assert_eq!(answers[&fy_key]["member_status"], "past_due", "{answers}");
    let ed_now = &w.invoices(ed).await[0];
    assert_eq!(ed_now.0, "paid");
    assert!(ed_now.1.starts_with("pay_"), "{ed_now:?}");
    assert_eq!(w.member(fy).await.0, "past_due");
    assert_eq!(w.invoices(fy).await[0].2, 1);

    // A redelivery of either event books nothing more.
    let now = tapkit_server::store::now_ms();
    let again = |kind: &str, inv: i64, key: &str, extra: (&str, &str)| {
        let mut e = serde_json::json!({
            "event_id": format!("{key}:redelivered"),
            "kind": kind,
            "occurred_at": rfc3339_ms(now),
            "invoice_id": inv,
            "idempotency_key": key,
        });
        e[extra.0] = extra.1.into();
        e
    };
    let out =
        w.s.deliver(again(
            "payment_succeeded",
            ed_inv.id,
            &ed_key,
            ("reference", "pay_other"),
        ))
        .await;
    assert_eq!(out["status"], "duplicate", "{out}");
    let out =
        w.s.deliver(again(
            "payment_failed",
            fy_inv.id,
            &fy_key,
            ("reason", "card_declined"),
        ))
        .await;
    assert_eq!(out["status"], "duplicate", "{out}");
    assert_eq!(w.invoices(fy).await[0].2, 1, "one failure for one attempt");
    assert_eq!(
        w.invoices(ed).await[0].1,
        ed_now.1,
        "the first reference stays"
    );
    // The ledger has the one settlement.
    let settled: i64 = sqlx::Row::get(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'settlement' AND invoice_ref = $1",
        )
        .bind(ed_inv.id)
        .fetch_one(&w.s.pool().await)
        .await
        .unwrap(),
        "n",
    );
    assert_eq!(settled, 1);

    // Events that do not match a charge Tapkit asked for are refused, naming the field.
    for (e, field) in [
        (
            again(
                "payment_failed",
                fy_inv.id,
                &format!("tapkit-invoice-{}-attempt-3", fy_inv.id),
                ("reason", "x"),
            ),
            "idempotency_key",
        ),
        (
            again(
                "payment_succeeded",
                fy_inv.id,
                &ed_key,
                ("reference", "pay_x"),
            ),
            "idempotency_key",
        ),
        (
            again(
                "payment_succeeded",
                999_999,
                "tapkit-invoice-999999-attempt-1",
                ("reference", "pay_x"),
            ),
            "",
        ),
        (
            again("payment_failed", fy_inv.id, &fy_key, ("reference", "pay_x")),
            "reference",
        ),
    ] {
        let body = e.to_string();
        let sig = tapkit_server::money::wire::sign(body.as_bytes(), WEBHOOK, now / 1000);
        let (status, body) = w.s.deliver_raw(&body, Some(sig)).await;
        if field.is_empty() {
            assert_eq!(status, axum::http::StatusCode::NOT_FOUND, "{e}: {body}");
            continue;
        }
        assert_eq!(
            status,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "{e}: {body}"
        );
        assert_eq!(body["field"], field, "{e}: {body}");
    }

    // Fy got one dunning email; Ed none.
    let m = mails(&w.smtp_out);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(m[0].contains("To: cus_fy@example.com"), "{}", m[0]);
    // The charge run asks for Ed's invoice no more.
    let r = w.charge("2026-11-10").await;
    assert_eq!((r.succeeded, r.pending), (0, 0), "{r:?}");
}

on_both_databases!(
    a_declined_card_is_retried_on_the_schedule_then_recovers_or_lapses,
    a_lost_answer_is_asked_again_and_charges_once,
    a_pending_charge_is_settled_by_the_signed_event,
);
