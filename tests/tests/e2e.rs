//! The whole tap-to-book loop with every real component at once, on SQLite and on
//! PostgreSQL:
//!
//! - **nginx** with `deploy/nginx/book.example.com.conf` (only ports, certificate paths,
//!   web root and upstream addresses swapped) serves the sample booking site
//!   (`deploy/sample-site/public`) over TLS on the brand's host name `book.example.com`
//!   and proxies `/r/`, the API, the console and the portal to `tapkit-server`, so the
//!   attribution cookie is first-party on that host; Chromium maps the name to
//!   127.0.0.1 (`--host-resolver-rules`).
//! - three partners are created through the admin API, their cards provisioned by
//!   `provisioner provision --server` through the real pcscd and the vpcd virtual reader
//!   (UID+counter mirror on), and their print PDF rendered;
//! - each card is read back through PC/SC by an independent client (pyscard + ndeflib),
//!   as a phone reads it (the chip fills the mirror), and the URL opened in headless
//!   Chromium; the customer lands on the booking site with the cookies, checks out, and
//!   the sample booking application (`deploy/sample-site/booking_app.py`) sends signed
//!   `booking_paid` and then `booking_serviced` webhooks;
//! - also a customer scanning a QR decoded (zbar) from the PDF's page image, a customer
//!   tapping twice, a replayed URL, a self-referral and a refund after the payout;
//! - the months are closed and the payout reports compared with totals computed by hand.
//!
//! Time: month close needs the month to have ended, so the server and the booking app run
//! on a shifted clock (libfaketime, a relative offset, so both share it): the loop in
//! March 2026, the close of March on 1 April (then the refund), the close of April on
//! 1 May. Chromium keeps the real clock (cookies use Max-Age).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapkit_e2e::browser::Driver;
use tapkit_e2e::{
    BookingApp, Database, KillOnDrop, PcscEnv, Server, SimCard, bin, clock_at,
    drop_postgres_database, free_port, independent_read, pcsc_env, postgres_database, repo, sql,
    stderr, wait_listening, zbar,
};

const HOST: &str = "book.example.com";
const WEBHOOK_SECRET: &str = "e2e-webhook-secret-shared-with-the-booking-app";

/// The program: the sample's commission rules (10 % of a business partner's serviced
/// booking, at most $50; $20 minimum payout; 14 holding days).
const CONFIG: &str = r#"
trusted_proxies = ["127.0.0.1"]

[program]
name = "Shine Auto Detailing"
domain = "book.example.com"
booking_url = "https://book.example.com/"
cookie_days = 30

[program.fraud]
# Every customer in this test reaches nginx from 127.0.0.1, so the per-IP rule would hold
# them all; it and the review sample are covered in server/tests/conversions.rs.
max_per_ip_per_day = 0
review_every = 0

[program.commission]
currency = "USD"
holding_days = 14
minimum_payout_minor = 2000

[[program.commission.rules]]
on = "booking"
affiliate_kind = "business"
rewards = [{ unit = "cash", percent_bp = 1000, cap_minor = 5000 }]
"#;

/// A self-signed certificate for the brand's host name (Chromium is told to accept it).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", stderr(&out));
    (cert, key)
}

/// An nginx master process, stopped with SIGTERM when dropped (a SIGKILLed master
/// leaves its workers running, still listening).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx with the deploy config; returns the process and its HTTPS port.
fn start_nginx(dir: &Path, tapkit: &str, app: &str) -> (Nginx, u16) {
    let (cert, key) = certificate(dir);
    let https = free_port();
    let http = free_port();
    let mut site = std::fs::read_to_string(repo().join("deploy/nginx/book.example.com.conf"))
        .expect("deploy/nginx/book.example.com.conf");
    let swaps = [
        (
            "listen 443 ssl http2;".to_owned(),
            format!("listen 127.0.0.1:{https} ssl http2;"),
        ),
        ("listen [::]:443 ssl http2;".to_owned(), String::new()),
        ("listen 80;".to_owned(), format!("listen 127.0.0.1:{http};")),
        ("listen [::]:80;".to_owned(), String::new()),
        (
            format!("/etc/letsencrypt/live/{HOST}/fullchain.pem"),
            cert.display().to_string(),
        ),
        (
            format!("/etc/letsencrypt/live/{HOST}/privkey.pem"),
            key.display().to_string(),
        ),
        (
            format!("root /var/www/{HOST};"),
            format!(
                "root {};",
                repo().join("deploy/sample-site/public").display()
            ),
        ),
        (
            "server 127.0.0.1:8080;".to_owned(),
            format!("server {tapkit};"),
        ),
        (
            "server 127.0.0.1:5000;".to_owned(),
            format!("server {app};"),
        ),
    ];
    for (from, to) in &swaps {
        assert_eq!(
            site.matches(from.as_str()).count(),
            1,
            "the deploy config changed: {from:?} should appear once"
        );
        site = site.replace(from.as_str(), to);
    }
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let tmp = dir.join("nginx-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let d = dir.display();
    let t = tmp.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  access_log {d}/nginx-access.log;\n\
             client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n\
             include {d}/site.conf;\n}}\n",
            // As root the workers would run as nobody, who may not read the web root.
            user = if root { "user root;\n" } else { "" },
        ),
    )
    .unwrap();
    // Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
    let program = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nginx");
    let nginx = |extra: &[&str]| {
        let mut c = Command::new(program);
        c.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .args(extra);
        c
    };
    let check = nginx(&["-t"])
        .output()
        .expect("nginx (scripts/install-deps.sh e2e)");
    assert!(check.status.success(), "nginx -t: {}", stderr(&check));
    let child = Nginx(
        nginx(&[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(&format!("127.0.0.1:{https}"), "nginx");
    (child, https)
}

/// Runs `provisioner provision --server` at the reader, placing a fresh emulated NTAG215
/// for each partner it asks for (its memory kept in `cards/<code>.json`) and taking it
/// away after the verified write. Returns the events.
fn provision_at_reader(env: &PcscEnv, server: &Server, dir: &Path) -> Vec<Value> {
    let mut child = Command::new(bin("provisioner"))
        .args([
            "provision",
            "--server",
            &server.url(),
            "--reader",
            &env.reader0,
        ])
        .arg("--journal")
        .arg(dir.join("journal.jsonl"))
        .args(["--non-interactive", "--json"])
        .env("TAPKIT_ADMIN_TOKEN", &server.token)
        .env("XDG_CONFIG_HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = KillOnDrop(child);
    let mut events = Vec::new();
    let mut card = None;
    for line in out.lines() {
        let ev: Value = serde_json::from_str(&line.unwrap()).unwrap();
        match ev["event"].as_str().unwrap() {
            "next" => {
                let image = card_image(dir, ev["code"].as_str().unwrap());
                card = Some(SimCard::start(
                    &env.reader0,
                    env.port0,
                    &["--tag", "ntag215", "--image", image.to_str().unwrap()],
                ));
            }
            "card" => drop(card.take()),
            _ => {}
        }
        events.push(ev);
    }
    assert!(child.0.wait().unwrap().success(), "provision: {events:?}");
    events
}

fn card_image(dir: &Path, code: &str) -> PathBuf {
    dir.join(format!("card-{code}.json"))
}

/// A phone taps the card: the emulated tag is powered up on the reader and read by the
/// independent client, which sees the URL with the mirror the chip filled in.
fn tap(env: &PcscEnv, dir: &Path, code: &str) -> String {
    let image = card_image(dir, code);
    let _card = SimCard::start(
        &env.reader0,
        env.port0,
        &["--tag", "ntag215", "--image", image.to_str().unwrap()],
    );
    independent_read(&env.reader0)["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn counter(url: &str) -> u32 {
    u32::from_str_radix(&url[url.len() - 6..], 16).unwrap()
}

/// One customer's browser visit: the cookies Chromium stored for the brand's host.
fn tapkit_cookies(driver: &Driver) -> BTreeMap<String, Value> {
    driver
        .call("GET", "/cookie", None)
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("tapkit_"))
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// Opens `url` (a tap or scan) in a browser with no cookies; the customer lands on the
/// booking page. Returns when the page is shown.
fn arrive(driver: &Driver, url: &str) -> Instant {
    driver.goto(&format!("https://{HOST}/"));
    driver.call("DELETE", "/cookie", None);
    driver.goto(url);
    // The click is committed before the 302 leaves, so it is older than this.
    let at = Instant::now();
    assert_eq!(driver.current_url(), format!("https://{HOST}/"), "{url}");
    assert!(driver.text().contains("Book a detail"), "{}", driver.text());
    at
}

/// The customer checks out (not sooner than 2.5 s after the tap: the program ignores
/// conversions within 2 s of their click as bots). Returns the booking id.
fn check_out(driver: &Driver, since: Instant, service: &str, name: &str, email: &str) -> String {
    driver.js(&format!(
        "document.getElementById('service').value = '{service}'; return true"
    ));
    driver.type_into("#name", name);
    driver.type_into("#email", email);
    if let Some(wait) = Duration::from_millis(2500).checked_sub(since.elapsed()) {
        std::thread::sleep(wait);
    }
    driver.click_to_load("#pay");
    let booking = driver.js("return document.getElementById('booking').textContent");
    booking.as_str().unwrap().to_owned()
}

/// The attribution the checkout page will send (its hidden field).
fn sent_attribution(driver: &Driver) -> String {
    driver
        .js("return document.getElementById('attribution').value")
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_loop_end_to_end_on_sqlite() {
    the_loop(false);
}

#[test]
fn the_loop_end_to_end_on_postgres() {
    the_loop(true);
}

#[allow(clippy::too_many_lines)] // one story, told in order
fn the_loop(on_postgres: bool) {
    let Some((env, _pcsc)) = pcsc_env() else {
        return;
    };
    let tag = if on_postgres { "postgres" } else { "sqlite" };
    let pg = if on_postgres {
        let Some(pg) = postgres_database(tag) else {
            return;
        };
        Some(pg)
    } else {
        None
    };
    let database = pg
        .as_ref()
        .map_or(Database::Sqlite, |(url, _)| Database::Postgres(url.clone()));
    let _browser_lock = tapkit_e2e::browser::ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);

    // ---- March 2026: the brand's site goes live ------------------------------------
    let march = clock_at("2026-03-03T12:00:00Z");
    let dir = std::env::temp_dir().join(format!("tapkit-loop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tapkit.toml"), CONFIG).unwrap();
    let mut server_env: Vec<(String, String)> = vec![
        (
            "TAPKIT_CONFIG".into(),
            dir.join("tapkit.toml").display().to_string(),
        ),
        ("TAPKIT_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        ("TAPKIT_PUBLIC_URL".into(), format!("https://{HOST}")),
    ];
    server_env.extend(march.iter().cloned());
    let server_env_ref: Vec<(&str, &str)> = server_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut server = Server::start(
        &format!("e2e-{tag}"),
        pg.as_ref().map(|(url, _)| url.as_str()),
        &server_env_ref,
    );
    let mut app = BookingApp::start(&dir, &server.addr, WEBHOOK_SECRET, &march);
    let (_nginx, https) = start_nginx(&dir, &server.addr, &app.addr);

    // Three partners through the admin API.
    let names = ["Iron Gym", "Glow Day Spa", "Café Zürich & Co."];
    let mut partners = Vec::new();
    for name in names {
        let (status, a) = server.api(
            "POST",
            "/api/admin/affiliates",
            Some(&json!({ "name": name, "kind": "business" }).to_string()),
        );
        assert_eq!(status, 201, "{a}");
        assert_eq!(
            a["url"],
            format!("https://{HOST}/r/{}", a["code"].as_str().unwrap())
        );
        partners.push((
            a["id"].as_i64().unwrap(),
            a["code"].as_str().unwrap().to_owned(),
        ));
    }
    let [(p1, c1), (p2, c2), (p3, c3)] = <[(i64, String); 3]>::try_from(partners).unwrap();
    // The café's owner is also a customer of the brand (a self-referral later).
    let (status, v) = server.api(
        "PATCH",
        &format!("/api/admin/affiliates/{p3}"),
        Some(r#"{"email": "owner@cafe-zurich.example"}"#),
    );
    assert_eq!(status, 200, "{v}");

    // Their cards, at the reader: written, verified, registered.
    let events = provision_at_reader(&env, &server, &dir);
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["done"], 3, "{summary}");
    assert_eq!(summary["registration_pending"], 0, "{summary}");
    let (_, cards) = server.api("GET", "/api/admin/cards", None);
    let cards = cards.as_array().unwrap();
    let mut uid_of = BTreeMap::new();
    for ev in events.iter().filter(|e| e["event"] == "card") {
        assert_eq!(ev["outcome"], "written", "{ev}");
        assert_eq!(ev["server_registered"], true, "{ev}");
        let id = ev["affiliate_id"].as_i64().unwrap();
        let card = cards.iter().find(|c| c["affiliate_id"] == id).unwrap();
        assert_eq!(card["uid"], ev["uid"]);
        uid_of.insert(id, ev["uid"].as_str().unwrap().to_owned());
    }
    assert_eq!(uid_of.len(), 3);

    // The print shop's PDF; the QR on the sheet, decoded from the page image.
    let pdf = dir.join("cards.pdf");
    let out = Command::new(bin("provisioner"))
        .args([
            "print",
            "--server",
            &server.url(),
            "--all",
            "--layout",
            "a4",
        ])
        .arg("--out")
        .arg(&pdf)
        .env("TAPKIT_ADMIN_TOKEN", &server.token)
        .env("XDG_CONFIG_HOME", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "print: {}", stderr(&out));
    let out = Command::new("pdftoppm")
        .args(["-r", "300", "-png", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&pdf)
        .arg(dir.join("sheet"))
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftoppm: {}", stderr(&out));
    let mut printed = zbar(&dir.join("sheet.png"));
    printed.sort();
    let mut want: Vec<String> = [&c1, &c2, &c3]
        .iter()
        .map(|c| format!("https://{HOST}/r/{c}?s=qr"))
        .collect();
    want.sort();
    assert_eq!(printed, want, "the QR codes on the front sheet");

    let driver = Driver::start_with(&[
        format!("--host-resolver-rules=MAP {HOST} 127.0.0.1:{https}"),
        "--ignore-certificate-errors".into(),
    ])
    .expect("Chromium");

    // 1. Ana taps Iron Gym's card and books a full detail ($250 → $25.00).
    let url = tap(&env, &dir, &c1);
    assert!(
        url.starts_with(&format!("https://{HOST}/r/{c1}?m={}x", uid_of[&p1])),
        "{url}"
    );
    let at = arrive(&driver, &url);
    let cookies = tapkit_cookies(&driver);
    for (name, http_only) in [("tapkit_ref", true), ("tapkit_ref_js", false)] {
        let c = &cookies[name];
        assert_eq!(c["domain"], HOST, "first-party on the brand's host: {c}");
        assert_eq!(
            (&c["httpOnly"], &c["secure"], &c["sameSite"]),
            (&json!(http_only), &json!(true), &json!("Lax")),
            "{c}"
        );
    }
    let token = cookies["tapkit_ref_js"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sent_attribution(&driver), token, "the page sends the token");
    let ana = check_out(&driver, at, "full", "Ana", "ana@example.net");
    assert_eq!(
        app.booking(&ana)["tapkit"]["booking_paid"]["outcome"],
        "pending"
    );
    assert_eq!(app.staff(&ana, "serviced")["outcome"], "earned");

    // 2. Ben taps Glow Day Spa's card: an interior clean ($120 → $12.00).
    let url = tap(&env, &dir, &c2);
    let at = arrive(&driver, &url);
    let ben = check_out(&driver, at, "interior", "Ben", "ben@example.org");
    assert_eq!(app.staff(&ben, "serviced")["outcome"], "earned");

    // 3. Chloé taps the café's card: ceramic coating ($900 → 10 % capped at $50.00).
    let chloe_url = tap(&env, &dir, &c3);
    let at = arrive(&driver, &chloe_url);
    let chloe = check_out(&driver, at, "ceramic", "Chloé", "chloe@example.com");
    assert_eq!(app.staff(&chloe, "serviced")["outcome"], "earned");

    // 4. Dev scans Glow Day Spa's printed QR (from the PDF): a full detail ($25.00).
    let qr = printed.iter().find(|u| u.contains(&c2)).unwrap();
    let at = arrive(&driver, qr);
    assert!(tapkit_cookies(&driver).contains_key("tapkit_ref_js"));
    let dev = check_out(&driver, at, "full", "Dev", "dev@example.net");
    assert_eq!(app.staff(&dev, "serviced")["outcome"], "earned");

    // 5. Eve taps Iron Gym's card twice (the counter rises; the first tap's attribution
    //    is kept) and books an interior clean ($12.00).
    let first = tap(&env, &dir, &c1);
    let second = tap(&env, &dir, &c1);
    assert!(counter(&second) > counter(&first), "{first} then {second}");
    arrive(&driver, &first);
    let eve_token = tapkit_cookies(&driver)["tapkit_ref"]["value"].clone();
    driver.goto(&second);
    let at = Instant::now();
    assert_eq!(tapkit_cookies(&driver)["tapkit_ref"]["value"], eve_token);
    let eve = check_out(&driver, at, "interior", "Eve", "eve@example.org");
    assert_eq!(app.staff(&eve, "serviced")["outcome"], "earned");

    // 6. Someone replays the URL Chloé's tap produced (the counter did not rise): they
    //    reach the booking site, with no attribution, and their booking earns nothing.
    let at = arrive(&driver, &chloe_url);
    assert!(tapkit_cookies(&driver).is_empty(), "no cookie for a replay");
    assert_eq!(sent_attribution(&driver), "");
    let replayed = check_out(&driver, at, "full", "Finn", "finn@example.com");
    let paid = &app.booking(&replayed)["tapkit"]["booking_paid"];
    assert_eq!(
        (&paid["outcome"], &paid["reason"]),
        (&json!("unattributed"), &json!("no_attribution_token")),
        "{paid}"
    );

    // 7. The café's owner taps their own card and books: a self-referral, no commission.
    let url = tap(&env, &dir, &c3);
    let at = arrive(&driver, &url);
    let own = check_out(&driver, at, "full", "Owner", "  Owner@Cafe-Zurich.example");
    let paid = &app.booking(&own)["tapkit"]["booking_paid"];
    assert_eq!(
        (&paid["outcome"], &paid["reason"]),
        (&json!("refused"), &json!("self_referral")),
        "{paid}"
    );
    drop(driver);

    // What the server logged, read from its database: every tap and scan, its channel,
    // the chip's counter, and the replay flagged.
    let clicks = sql(
        &database,
        &server.dir,
        "SELECT code, channel, outcome, COALESCE(reason, ''), COALESCE(counter, -1) FROM clicks ORDER BY id",
    );
    let row = |code: &str, channel: &str, outcome: &str, reason: &str| {
        format!("{code}|{channel}|{outcome}|{reason}")
    };
    let without_counter: Vec<String> = clicks
        .iter()
        .map(|r| r.rsplit_once('|').unwrap().0.to_owned())
        .collect();
    assert_eq!(
        without_counter,
        [
            row(&c1, "nfc", "attributed", ""),
            row(&c2, "nfc", "attributed", ""),
            row(&c3, "nfc", "attributed", ""),
            row(&c2, "qr", "attributed", ""),
            row(&c1, "nfc", "attributed", ""),
            row(&c1, "nfc", "unattributed", "earlier_attribution_kept"),
            row(&c3, "nfc", "flagged", "replayed_counter"),
            row(&c3, "nfc", "attributed", ""),
        ],
        "{clicks:#?}"
    );
    let counters: Vec<i64> = clicks
        .iter()
        .map(|r| r.rsplit_once('|').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(counters[4] + 1, counters[5], "Eve's two taps: {counters:?}");
    assert_eq!(
        counters[2], counters[6],
        "the replay repeats Chloé's counter"
    );
    assert_eq!(i64::from(counter(&second)), counters[5]);
    // Customers from other addresses through the same nginx (curl from 127.0.0.2 and
    // .3, the first once claiming to be someone else): the server counts each under its
    // own address, read from the X-Forwarded-For nginx appended, never the claimed one.
    let before = clicks.len();
    for (from, claim) in [
        ("127.0.0.2", None),
        ("127.0.0.2", Some("198.51.100.66")),
        ("127.0.0.3", None),
    ] {
        let head = curl_from(https, from, claim, &format!("/r/{c2}"));
        assert!(head.starts_with("HTTP/2 302"), "{head}");
    }
    let hashes = sql(
        &database,
        &server.dir,
        "SELECT ip_hash FROM clicks ORDER BY id",
    );
    let browser = &hashes[0];
    let (a, b, c) = (&hashes[before], &hashes[before + 1], &hashes[before + 2]);
    assert!(hashes[..before].iter().all(|h| h == browser), "{hashes:?}");
    assert_eq!(a, b, "a claimed X-Forwarded-For changes nothing");
    assert!(a != c && a != browser && c != browser, "{hashes:?}");
    assert!(
        hashes.iter().all(|h| !h.contains("127.0.0")),
        "no raw address stored"
    );

    // ---- 1 April: close March, pay, then a refund ----------------------------------
    let april = clock_at("2026-04-01T06:00:00Z");
    for (k, v) in &april {
        server.set_env(k, v);
    }
    server.kill();
    server.spawn();
    app.restart(&april);
    let (status, report) = server.api("POST", "/api/admin/periods/2026-03/close", None);
    assert_eq!(status, 200, "{report}");
    // By hand: Iron Gym 25.00 + 12.00, Glow Day Spa 12.00 + 25.00, the café 50.00 (capped);
    // the replay and the self-referral earn nothing. All over the $20 minimum, all past
    // the 14 holding days by the end of March.
    let lines = report["lines"].as_array().unwrap();
    let line = |id: i64| lines.iter().find(|l| l["affiliate_id"] == id).unwrap();
    for (id, earned) in [(p1, 3700), (p2, 3700), (p3, 5000)] {
        let l = line(id);
        assert_eq!(
            (
                &l["unit"],
                &l["opening_minor"],
                &l["earned_minor"],
                &l["reversed_minor"],
                &l["held_minor"],
                &l["payout_minor"],
                &l["carried_minor"]
            ),
            (
                &json!("USD"),
                &json!(0),
                &json!(earned),
                &json!(0),
                &json!(0),
                &json!(earned),
                &json!(0)
            ),
            "{l}"
        );
    }
    assert_eq!(lines.len(), 3, "{report}");
    // The same totals in the CSV the brand's accountant gets, fetched through nginx.
    let csv = curl(
        https,
        "/api/admin/periods/2026-03/payouts.csv",
        &server.token,
    );
    for (code, amount) in [(&c1, "37.00"), (&c2, "37.00"), (&c3, "50.00")] {
        let row = csv.lines().find(|l| l.contains(code.as_str())).unwrap();
        assert!(row.contains(amount), "{row}");
    }
    for l in lines {
        let (status, v) = server.api(
            "POST",
            &format!("/api/admin/payouts/{}/paid", l["id"]),
            Some(r#"{"reference": "SEPA-2026-04-01"}"#),
        );
        assert_eq!(status, 200, "{v}");
    }
    // Ana's booking is refunded after Iron Gym was paid for it.
    let refund = app.staff(&ana, "refunded");
    assert_eq!(refund["outcome"], "reversed", "{refund}");

    // ---- 1 May: close April; the refund is clawed back from Iron Gym ---------------
    let may = clock_at("2026-05-01T06:00:00Z");
    for (k, v) in &may {
        server.set_env(k, v);
    }
    server.kill();
    server.spawn();
    let (status, report) = server.api("POST", "/api/admin/periods/2026-04/close", None);
    assert_eq!(status, 200, "{report}");
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "only Iron Gym moved in April: {report}");
    let l = &lines[0];
    assert_eq!(l["affiliate_id"], p1);
    assert_eq!(
        (
            &l["opening_minor"],
            &l["earned_minor"],
            &l["reversed_minor"],
            &l["payout_minor"],
            &l["carried_minor"]
        ),
        (&json!(0), &json!(0), &json!(2500), &json!(0), &json!(-2500)),
        "Iron Gym owes back Ana's $25.00: {l}"
    );
    let (_, earnings) = server.api("GET", &format!("/api/admin/affiliates/{p1}/earnings"), None);
    assert!(earnings.to_string().contains("-2500"), "{earnings}");

    drop(app);
    drop(server);
    if let Some((url, base)) = pg {
        drop_postgres_database(&url, &base);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// GET through nginx from the source address `from` (a customer's phone), optionally
/// sending its own `X-Forwarded-For`; the response head.
fn curl_from(https: u16, from: &str, claim: Option<&str>, path: &str) -> String {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "-k",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--interface",
        from,
    ])
    .args([
        "-A",
        "Mozilla/5.0 (Linux; Android 15) Mobile",
        "--connect-to",
    ])
    .arg(format!("{HOST}:443:127.0.0.1:{https}"));
    if let Some(ip) = claim {
        c.arg("-H").arg(format!("X-Forwarded-For: {ip}"));
    }
    let out = c.arg(format!("https://{HOST}{path}")).output().unwrap();
    assert!(out.status.success(), "curl {path}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// GET through nginx on the brand's host name (curl connects it to 127.0.0.1 and
/// accepts the test's self-signed certificate).
fn curl(https: u16, path: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-k", "--connect-to"])
        .arg(format!("{HOST}:443:127.0.0.1:{https}"))
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://{HOST}{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {path}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}
