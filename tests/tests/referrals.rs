//! A peer referral from end to end, in real Chromium against the real server process,
//! with Python's SMTP server process catching the emails:
//!
//! 1. a customer asks for a link at `/refer`, and signs in by the emailed link;
//! 2. the portal gives her link, with share links that carry the friend's offer;
//! 3. a friend opens the link in a second browser (its own profile) and lands on the
//!    booking site with the cookie pair; the brand's checkout looks the cookie's offer up
//!    and redeems it on the friend's booking;
//! 4. signed webhooks report the booking paid and serviced; her first referral waits
//!    for the admin's review (she signed up herself), whose approval issues her voucher
//!    at once, emailed to her;
//! 5. she redeems the voucher at the checkout, once.
//!
//! Needs Chromium (`scripts/install-deps.sh browser`); skipped with a note without it,
//! unless `TAPKIT_REQUIRE_BROWSER=1` (scripts/test.sh).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};
use tapkit_e2e::browser::{Driver, ONE_BROWSER};
use tapkit_e2e::{
    Server, drop_postgres_database, eventually, http_request, mail_text, postgres_database,
    smtp_server,
};

const SECRET: &str = "e2e-referrals-webhook-secret";

/// `Tapkit-Signature` values for `bodies`, computed by Python's hmac (an implementation
/// independent of the server's), valid for the server's tolerance (300 s).
fn signatures(bodies: &[String]) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            r#"
import hashlib, hmac, sys, time
t = str(int(time.time()))
for line in sys.stdin:
    body = line.rstrip("\n").encode()
    mac = hmac.new(sys.argv[1].encode(), t.encode() + b"." + body, hashlib.sha256)
    print(f"t={t},v1={mac.hexdigest()}")
"#,
            SECRET,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for b in bodies {
        writeln!(stdin, "{b}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let sigs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(sigs.len(), bodies.len(), "python3 signed every body");
    sigs
}

/// A signed request of the brand's checkout.
fn signed(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let sig = signatures(std::slice::from_ref(&body)).remove(0);
    let (status, _, text) = http_request(
        &server.addr,
        "POST",
        path,
        &format!("Tapkit-Signature: {sig}\r\n"),
        Some(&body),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The first word of the mails that starts with `prefix`, once it has arrived.
fn wait_for_word(out: &std::path::Path, prefix: &str) -> String {
    let mut found = None;
    let arrived = eventually(Duration::from_secs(20), || {
        found = mail_text(out)
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .map(str::to_owned);
        found.is_some()
    });
    assert!(arrived, "no {prefix}… in the mail: {}", mail_text(out));
    found.unwrap()
}

#[test]
fn a_customer_refers_a_friend_on_sqlite() {
    journey(false);
}

#[test]
fn a_customer_refers_a_friend_on_postgres() {
    journey(true);
}

#[allow(clippy::too_many_lines)] // one story, told in order
fn journey(on_postgres: bool) {
    let tag = if on_postgres { "postgres" } else { "sqlite" };
    let pg = if on_postgres {
        let Some(pg) = postgres_database(&format!("referrals_{tag}")) else {
            return;
        };
        Some(pg)
    } else {
        None
    };
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(referrer) = Driver::start() else {
        return;
    };
    let site = tapkit_e2e::booking_site();
    let dir =
        std::env::temp_dir().join(format!("tapkit-referrals-cfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tapkit.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[program]
name = "Glow Salon"
domain = "book.example.com"
booking_url = "http://127.0.0.1:{site}/book"
cookie_days = 30

[program.fraud]
min_seconds_after_click = 0
review_every = 0
max_per_ip_per_day = 0

[program.rewards]
expires_days = 90
friend_offer = {{ percent_bp = 1500, days = 30 }}

[program.rewards.vouchers]
free-basic-service = {{ free = true, cap_minor = 6000, applies_to = "a basic service" }}

[program.commission]
currency = "USD"

[[program.commission.rules]]
name = "customer referral"
on = "booking"
affiliate_kind = "customer"
rewards = [{{ unit = "voucher", voucher = "free-basic-service" }}]
"#
        ),
    )
    .unwrap();
    let smtp_out = dir.join("smtp.out");
    let (_smtp, smtp_port) = smtp_server(&smtp_out);
    let server = Server::start(
        &format!("referrals-{tag}"),
        pg.as_ref().map(|(url, _)| url.as_str()),
        &[
            ("TAPKIT_CONFIG", config.to_str().unwrap()),
            ("TAPKIT_WEBHOOK_SECRET", SECRET),
            ("TAPKIT_SMTP_URL", &format!("smtp://127.0.0.1:{smtp_port}")),
            ("TAPKIT_RATE_LIMIT_PER_HOUR", "0"),
        ],
    );
    let base = server.url();

    // 1. The customer asks for her link and signs in by the emailed one.
    referrer.goto(&format!("{base}/refer"));
    assert!(
        referrer.text().contains("15 % off your first visit"),
        "{}",
        referrer.text()
    );
    referrer.type_into("#name", "Carla");
    referrer.type_into("#email", "carla@example.com");
    referrer.click_to_load("button[type=submit]");
    assert!(
        referrer.text().contains("A sign-in link is on its way"),
        "{}",
        referrer.text()
    );
    let link = wait_for_word(&smtp_out, &format!("{base}/portal/link/"));
    referrer.goto(&link);
    referrer.click_to_load("button[type=submit]");
    assert!(
        referrer.text().contains("Hello, Carla"),
        "{}",
        referrer.text()
    );

    // 2. Her link, and share links carrying the offer.
    let mine = referrer
        .js("return document.getElementById('partner-link').value")
        .as_str()
        .unwrap()
        .to_owned();
    let code = mine.rsplit("/r/").next().unwrap().to_owned();
    let whatsapp = referrer.js(
        "return decodeURIComponent(document.querySelector('a[href^=\"https://wa.me/\"]').href.split('text=')[1])",
    );
    assert_eq!(
        whatsapp.as_str().unwrap(),
        format!("Book with Glow Salon through my link and get 15 % off your first visit: {mine}")
    );
    drop(referrer);

    // 3. A friend, in a browser of her own, opens the link and books with the offer.
    let friend = Driver::start().unwrap();
    friend.goto(&format!("{base}/r/{code}"));
    assert!(
        friend
            .current_url()
            .contains(&format!("127.0.0.1:{site}/book"))
    );
    let cookies = friend
        .js("return document.cookie")
        .as_str()
        .unwrap()
        .to_owned();
    let token = cookies
        .split("; ")
        .find_map(|c| c.strip_prefix("tapkit_ref_js="))
        .unwrap_or_else(|| panic!("no readable attribution cookie: {cookies}"))
        .to_owned();
    drop(friend);
    let (st, offer) = signed(&server, "/api/rewards/lookup", &json!({ "code": token }));
    assert_eq!(st, 200, "{offer}");
    assert_eq!(
        (offer["source"].as_str(), offer["percent_bp"].as_i64()),
        (Some("friend_offer"), Some(1500))
    );
    let (st, used) = signed(
        &server,
        "/api/rewards/redeem",
        &json!({ "code": token, "booking_id": "B-100", "amount_minor": 8000 }),
    );
    assert_eq!(
        (st, used["discount_minor"].as_i64()),
        (200, Some(1200)),
        "{used}"
    );

    // 4. The booking is paid (8000 - 1200) and serviced: the referrer's voucher is issued.
    // The booking comes after the tap: event times are whole seconds, so wait for the
    // next one (a busy CI machine ran the tap and the events in the same second, and a
    // booking stamped before its click is refused as too fast).
    std::thread::sleep(Duration::from_millis(1200));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = tapkit_core::date::rfc3339(now);
    for (kind, extra) in [
        (
            "booking_paid",
            json!({ "amount_minor": 6800, "currency": "USD", "attribution": token }),
        ),
        ("booking_serviced", json!({})),
    ] {
        let mut e = json!({
            "event_id": format!("evt-{kind}"), "kind": kind, "booking_id": "B-100",
            "occurred_at": at, "customer_id": "friend-1",
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (st, v) = signed(&server, "/api/conversions", &e);
        assert_eq!(st, 200, "{v}");
    }
    // She signed up herself and had no booking of her own: her first referral waits
    // for the admin (referred_before_booking), whose approval issues the reward.
    let (st, reviews) = server.api("GET", "/api/admin/reviews", None);
    assert_eq!(st, 200, "{reviews}");
    let review = &reviews.as_array().unwrap()[0];
    assert_eq!(review["reason"], "referred_before_booking", "{review}");
    let (st, d) = server.api(
        "POST",
        &format!("/api/admin/reviews/{}/approve", review["id"]),
        None,
    );
    assert_eq!(st, 200, "{d}");
    let reward = wait_for_word(&smtp_out, "RW-");
    let mail = mail_text(&smtp_out);
    assert!(
        mail.contains("Subject: Your friend booked with Glow Salon"),
        "{mail}"
    );
    assert!(mail.contains("free: a basic service"), "{mail}");
    assert!(
        mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{mail}"
    );

    // 5. She redeems it at the checkout, once.
    let (st, r) = signed(
        &server,
        "/api/rewards/redeem",
        &json!({ "code": reward, "booking_id": "B-200", "amount_minor": 4500 }),
    );
    assert_eq!((st, r["discount_minor"].as_i64()), (200, Some(4500)), "{r}");
    let (st, again) = signed(
        &server,
        "/api/rewards/redeem",
        &json!({ "code": reward, "booking_id": "B-201", "amount_minor": 4500 }),
    );
    assert_eq!(st, 409, "{again}");
    drop(server);
    if let Some((url, base)) = &pg {
        drop_postgres_database(url, base);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One POST over a fresh connection, without panicking when the server is gone: the
/// status, or `None` when no answer came (the server was killed).
fn try_post(addr: &str, path: &str, sig: &str, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTapkit-Signature: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut head = Vec::new();
    s.read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1)?.parse().ok()
}

/// SIGKILL under a stream of redemptions of one credit: after the restart, every
/// redemption the checkout got a 200 for is stored, none is stored twice, the credit's
/// balance is what was issued minus what is stored, and the ledger agrees.
#[test]
fn redemptions_survive_a_crash_exactly_once() {
    let site = tapkit_e2e::booking_site();
    let dir = std::env::temp_dir().join(format!("tapkit-rewards-crash-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tapkit.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[program]
name = "Glow Salon"
domain = "book.example.com"
booking_url = "http://127.0.0.1:{site}/book"

[program.fraud]
min_seconds_after_click = 0
review_every = 0
max_per_ip_per_day = 0

[program.rewards]

[[program.commission.rules]]
on = "booking"
affiliate_kind = "customer"
rewards = [{{ unit = "credit", fixed_minor = 100000 }}]
"#
        ),
    )
    .unwrap();
    let mut server = Server::start(
        "rewards-crash",
        None,
        &[
            ("TAPKIT_CONFIG", config.to_str().unwrap()),
            ("TAPKIT_WEBHOOK_SECRET", SECRET),
            ("TAPKIT_RATE_LIMIT_PER_HOUR", "0"),
        ],
    );
    let (st, a) = server.api(
        "POST",
        "/api/admin/referrers",
        Some(r#"{"email": "carla@example.com", "kind": "customer", "name": "Carla"}"#),
    );
    assert_eq!(st, 201, "{a}");
    let code = a["code"].as_str().unwrap();
    let (st, head, _) = http_request(
        &server.addr,
        "GET",
        &format!("/r/{code}"),
        "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1\r\n",
        None,
    );
    assert_eq!(st, 302);
    let token = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: tapkit_ref_js=")
                .or_else(|| l.strip_prefix("Set-Cookie: tapkit_ref_js="))
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie in {head}"))
        .to_owned();
    // The booking comes after the tap (event times are whole seconds).
    std::thread::sleep(Duration::from_millis(1200));
    let at = tapkit_core::date::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    for (kind, extra) in [
        (
            "booking_paid",
            json!({ "amount_minor": 9000, "currency": "USD", "attribution": token }),
        ),
        ("booking_serviced", json!({})),
    ] {
        let mut e = json!({ "event_id": format!("e-{kind}"), "kind": kind, "booking_id": "F-1", "occurred_at": at, "customer_id": "friend" });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (st, v) = signed(&server, "/api/conversions", &e);
        assert_eq!(st, 200, "{v}");
        if kind == "booking_serviced" {
            assert_eq!(v["outcome"], "earned", "{v}");
        }
    }
    let database = tapkit_e2e::Database::Sqlite;
    let reward = tapkit_e2e::sql(&database, &server.dir, "SELECT code FROM rewards").remove(0);

    let bodies: Vec<String> = (0..400)
        .map(|i| {
            json!({ "code": reward, "booking_id": format!("B-{i}"), "amount_minor": 7 }).to_string()
        })
        .collect();
    let sigs = signatures(&bodies);
    let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sender = {
        let (addr, answers) = (server.addr.clone(), answers.clone());
        let (bodies, sigs) = (bodies.clone(), sigs.clone());
        std::thread::spawn(move || {
            for (i, (b, sig)) in bodies.iter().zip(&sigs).enumerate() {
                let Some(st) = try_post(&addr, "/api/rewards/redeem", sig, b) else {
                    break; // killed
                };
                answers.lock().unwrap().push((i, st));
            }
        })
    };
    assert!(eventually(Duration::from_secs(30), || answers
        .lock()
        .unwrap()
        .len()
        >= 60));
    server.kill();
    sender.join().unwrap();
    server.spawn();

    let acked: Vec<String> = answers
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, st)| *st == 200)
        .map(|(i, _)| format!("B-{i}"))
        .collect();
    assert!(acked.len() >= 60, "{} acknowledged", acked.len());
    let stored = tapkit_e2e::sql(
        &database,
        &server.dir,
        "SELECT booking_id FROM reward_redemptions ORDER BY id",
    );
    eprintln!(
        "{} answered 200 before the kill, {} stored after the restart",
        acked.len(),
        stored.len()
    );
    let unique: std::collections::BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a redemption stored twice");
    for b in &acked {
        assert!(unique.contains(b), "{b} was answered 200 but is not stored");
    }
    let balance: i64 = tapkit_e2e::sql(&database, &server.dir, "SELECT balance FROM rewards")[0]
        .parse()
        .unwrap();
    assert_eq!(balance, 100_000 - 7 * i64::try_from(stored.len()).unwrap());
    assert!(
        tapkit_e2e::sql(
            &database,
            &server.dir,
            "SELECT unit FROM ledger_postings GROUP BY unit HAVING SUM(amount_minor) <> 0"
        )
        .is_empty(),
        "the ledger balances"
    );
    let outstanding: i64 = tapkit_e2e::sql(
        &database,
        &server.dir,
        "SELECT -SUM(amount_minor) FROM ledger_postings WHERE account = 'rewards_outstanding'",
    )[0]
    .parse()
    .unwrap();
    assert_eq!(
        outstanding, balance,
        "the ledger holds what the reward holds"
    );
    // The checkout retries what it had no answer for, and what it had: each once.
    let (st, again) = signed(
        &server,
        "/api/rewards/redeem",
        &json!({ "code": reward, "booking_id": acked[0], "amount_minor": 7 }),
    );
    assert_eq!(
        (st, again["status"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
