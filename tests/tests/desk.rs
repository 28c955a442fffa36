//! Check-in at the front desk, end to end through the real pcscd + vpcd (issue 20):
//! `provisioner provision --members` writes and binds member cards at the reader, and
//! `display-kiosk run --reader` reads them through pcscd and checks the members in
//! against the real server; the answer fills the kiosk's screen (Chromium screenshots at
//! the counter sizes); with the server down the kiosk checks in from its signed roster,
//! and the queue is reconciled exactly once when the server is back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapkit_e2e::browser::{Driver, ONE_BROWSER};
use tapkit_e2e::{Database, Kiosk, PcscEnv, Server, SimCard, eventually, pcsc_env, sql};

fn config(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("tapkit.toml");
    std::fs::write(
        &path,
        r#"
[program]
name = "Shine Auto Detailing"
domain = "book.example.com"
booking_url = "https://book.example.com/"

[program.kiosk]
heartbeat_secs = 5
offline_after_secs = 10

[program.membership]
retry_days = [3, 7, 14]
grace_days = 7

[[program.membership.plans]]
id = "basic"
name = "Basic"
price_minor = 2900
visits = 2
add_on_discount_bp = 1000
priority = "standard"

[[program.membership.plans]]
id = "plus"
name = "Plus"
price_minor = 4900
visits = 4
add_on_discount_bp = 1500
priority = "high"
"#,
    )
    .unwrap();
    path
}

fn member(server: &Server, customer: &str, first: &str, plan: &str) -> i64 {
    let (status, m) = server.api(
        "POST",
        "/api/admin/members",
        Some(
            &json!({ "customer_id": customer, "email": format!("{customer}@example.com"), "plan": plan, "first_name": first })
                .to_string(),
        ),
    );
    assert_eq!(status, 201, "{m}");
    m["id"].as_i64().unwrap()
}

/// `provisioner provision --server URL --members` at the reader: a fresh emulated card
/// (saved to `images[i]`) for each member it asks for.
fn provision_members(
    env: &PcscEnv,
    server: &Server,
    journal: &Path,
    images: &[PathBuf],
) -> Vec<Value> {
    use std::io::BufRead;
    let cfg_home = server.dir.display().to_string();
    let mut child = std::process::Command::new(tapkit_e2e::bin("provisioner"))
        .args(["provision", "--server", &server.url(), "--members"])
        .args(["--reader", &env.reader0, "--journal"])
        .arg(journal)
        .env("TAPKIT_ADMIN_TOKEN", &server.token)
        .env("XDG_CONFIG_HOME", &cfg_home)
        .args(["--non-interactive", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = tapkit_e2e::KillOnDrop(child);
    let mut events = Vec::new();
    let mut card: Option<SimCard> = None;
    let mut next = images.iter();
    for line in out.lines() {
        let ev: Value = serde_json::from_str(&line.unwrap()).unwrap();
        match ev["event"].as_str().unwrap_or("") {
            "next" => {
                let image = next.next().expect("no more member cards than members");
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

/// Places the card saved in `image` on the reader until the kiosk shows a new check-in;
/// returns its status entry and how long the card took to reach the screen.
fn tap(env: &PcscEnv, kiosk: &Kiosk, image: &Path) -> (Value, Duration) {
    let before = kiosk.status()["checkin"]["seq"].as_u64().unwrap_or(0);
    let card = SimCard::start(
        &env.reader0,
        env.port0,
        &["--tag", "ntag215", "--image", image.to_str().unwrap()],
    );
    let placed = Instant::now();
    let mut shown = Value::Null;
    let mut took = Duration::ZERO;
    let deadline = placed + Duration::from_secs(15);
    while Instant::now() < deadline {
        // What the page draws: the frame carries the check-in's number once it shows.
        let (_, svg) = kiosk.get("/frame.svg?w=800&h=480");
        if svg.contains(&format!("data-checkin=\"{}\"", before + 1)) {
            took = placed.elapsed();
            shown = kiosk.status()["checkin"].clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(card);
    assert!(
        shown.is_object(),
        "the kiosk showed no check-in: {}",
        kiosk.log()
    );
    (shown, took)
}

fn visits_left(server: &Server, id: i64) -> i64 {
    let (status, m) = server.api("GET", &format!("/api/admin/members/{id}"), None);
    assert_eq!(status, 200, "{m}");
    m["visits_left"].as_i64().unwrap()
}

#[test]
#[allow(clippy::too_many_lines)] // one story: provision, tap, refuse, screenshot, offline
fn members_check_in_at_the_kiosk_through_pcscd_online_and_offline() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tapkit-deskcfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = config(&dir);
    let mut server = Server::start("desk", None, &[("TAPKIT_CONFIG", cfg.to_str().unwrap())]);
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let ada = member(&server, "cus_ada", "Ada", "plus");
    let bo = member(&server, "cus_bo", "Bo", "basic");
    assert_eq!(visits_left(&server, ada), 4);

    // The admin writes both member cards at the reader; each is bound after it verifies.
    let images = [dir.join("ada.json"), dir.join("bo.json")];
    let events = provision_members(&env, &server, &dir.join("journal.jsonl"), &images);
    let written: Vec<&Value> = events.iter().filter(|e| e["event"] == "card").collect();
    assert_eq!(written.len(), 2, "{events:?}");
    for e in &written {
        assert_eq!(e["server_registered"], true, "{e}");
        let url = e["url"].as_str().unwrap();
        assert!(url.starts_with("https://book.example.com/m/"), "{url}");
        assert!(url.contains("?m="), "the mirror is on: {url}");
    }
    let (_, left) = server.api("GET", "/api/admin/members?needs_card=true", None);
    assert_eq!(left, json!([]), "every member has a card now");
    // The print shop's member cards: each QR opens the member's page, under the first
    // name and the plan.
    let pdf = dir.join("member-cards.pdf");
    let pngs = dir.join("qr");
    let out = std::process::Command::new(tapkit_e2e::bin("provisioner"))
        .args([
            "print",
            "--server",
            &server.url(),
            "--members",
            "--all",
            "--out",
        ])
        .arg(&pdf)
        .arg("--png-dir")
        .arg(&pngs)
        .env("TAPKIT_ADMIN_TOKEN", &server.token)
        .env("XDG_CONFIG_HOME", &server.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "print: {}", tapkit_e2e::stderr(&out));
    assert!(
        tapkit_e2e::stdout(&out).starts_with("2 cards on"),
        "{}",
        tapkit_e2e::stdout(&out)
    );
    let card = sql(
        &Database::Sqlite,
        &server.dir,
        &format!("SELECT code FROM members WHERE id = {ada}"),
    );
    let read = tapkit_e2e::zbar(&pngs.join(format!("{}.png", card[0])));
    assert_eq!(read, [format!("https://book.example.com/m/{}", card[0])]);
    let text = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Ada · Plus") && text.contains("Bo · Basic"),
        "{text}"
    );
    assert!(
        text.contains(&format!("book.example.com/m/{}", card[0])),
        "{text}"
    );

    // A copy of Ada's card as it is now: the next tap's counter, replayed later.
    let ada_copy = dir.join("ada-copy.json");
    std::fs::copy(&images[0], &ada_copy).unwrap();

    let state = Kiosk::enroll(&server, a["id"].as_i64().unwrap(), "desk");
    let kiosk = Kiosk::run(
        &state,
        &[
            "--reader",
            &env.reader0,
            "--checkin-secs",
            "30",
            "--max-backoff-secs",
            "2",
        ],
    );
    assert!(
        eventually(
            Duration::from_secs(20),
            || kiosk.status()["roster"]["cards"] == 2
        ),
        "the kiosk fetched its roster: {} {}",
        kiosk.status(),
        kiosk.log()
    );

    // Ada taps: one visit used, 4 → 3; the screen greets her with her plan.
    let (shown, took) = tap(&env, &kiosk, &images[0]);
    eprintln!(
        "card on the reader → answer on the screen: {} ms",
        took.as_millis()
    );
    assert_eq!(shown["result"], "welcome", "{shown}");
    assert_eq!(shown["member"]["first_name"], "Ada");
    assert_eq!(shown["member"]["plan"], "Plus");
    assert_eq!(shown["member"]["visits_left"], 3);
    assert_eq!(shown["member"]["add_on_discount_bp"], 1500);
    assert_eq!(shown["member"]["priority"], "high");
    assert_eq!(shown["offline"], false);
    assert_eq!(visits_left(&server, ada), 3);

    // The answer on the screen, in a real browser at the counter sizes.
    screenshots(&kiosk, "Welcome, Ada!");

    // The copy replays that tap's counter: refused as a copy, no visit used.
    let (shown, _) = tap(&env, &kiosk, &ada_copy);
    assert_eq!(
        (shown["result"].as_str(), shown["reason"].as_str()),
        (Some("refused"), Some("counter_not_rising")),
        "{shown}"
    );
    assert_eq!(visits_left(&server, ada), 3);

    // Bo lapsed (as dunning leaves a member whose last retry failed): refused, saying so.
    sql(
        &Database::Sqlite,
        &server.dir,
        &format!("UPDATE members SET status = 'lapsed' WHERE id = {bo}"),
    );
    let (shown, _) = tap(&env, &kiosk, &images[1]);
    assert_eq!(
        (shown["result"].as_str(), shown["reason"].as_str()),
        (Some("refused"), Some("lapsed")),
        "{shown}"
    );
    assert_eq!(shown["member"]["first_name"], "Bo");

    // The server goes down: Ada checks in twice from the roster (and what the kiosk saw
    // online since); both are queued.
    server.kill();
    for expect_left in [2, 1] {
        let (shown, _) = tap(&env, &kiosk, &images[0]);
        assert_eq!(shown["result"], "welcome", "{shown} {}", kiosk.log());
        assert_eq!(shown["offline"], true, "{shown}");
        assert_eq!(shown["member"]["visits_left"], expect_left, "{shown}");
    }
    assert_eq!(kiosk.status()["checkin_queue"], 2);
    // The copy is refused offline too: its counter is below what the kiosk has seen.
    let (shown, _) = tap(&env, &kiosk, &ada_copy);
    assert_eq!(shown["reason"], "counter_not_rising", "{shown}");
    assert_eq!(kiosk.status()["checkin_queue"], 2);

    // The server is back: the queue drains, each check-in reconciled once.
    server.spawn();
    assert!(
        eventually(Duration::from_secs(30), || kiosk.status()["checkin_queue"]
            == 0),
        "the queue drained: {} {}",
        kiosk.status(),
        kiosk.log()
    );
    assert_eq!(visits_left(&server, ada), 1);
    let offline = sql(
        &Database::Sqlite,
        &server.dir,
        &format!(
            "SELECT accepted, COALESCE(overdraft, '') FROM checkins WHERE member_id = {ada} AND offline_at IS NOT NULL ORDER BY id"
        ),
    );
    assert_eq!(offline, ["1|", "1|"], "two offline visits, no overdraft");
    // Submitting the queue again (a crash before the kiosk rewrote it) changes nothing.
    let keys = sql(
        &Database::Sqlite,
        &server.dir,
        &format!(
            "SELECT idempotency_key, counter FROM checkins WHERE member_id = {ada} AND offline_at IS NOT NULL"
        ),
    );
    let (status, answer) = kiosk_check_in(&server, &state, ada, &keys[0]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], true, "{answer}");
    assert_eq!(visits_left(&server, ada), 1);

    drop(kiosk);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Posts an offline check-in of `member` again as the kiosk's queue would, from the
/// key and counter the server stored (`key|counter`).
fn kiosk_check_in(server: &Server, state: &Path, member: i64, key_counter: &str) -> (u16, Value) {
    let id: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("identity.json")).unwrap())
            .unwrap();
    let (key, counter) = key_counter.split_once('|').unwrap();
    let card = sql(
        &Database::Sqlite,
        &server.dir,
        &format!(
            "SELECT m.code, c.uid FROM members m JOIN member_cards c ON c.member_id = m.id WHERE m.id = {member}"
        ),
    );
    let (code, uid) = card[0].split_once('|').unwrap();
    let url = format!(
        "https://book.example.com/m/{code}?m={uid}x{:06X}",
        counter.parse::<u32>().unwrap()
    );
    let body = json!({ "url": url, "offline_at_ms": 1 }).to_string();
    let (status, _, text) = tapkit_e2e::http_request(
        &server.addr,
        "POST",
        "/api/kiosk/check-in",
        &format!(
            "Authorization: Bearer kiosk.{}.{}\r\nIdempotency-Key: {key}\r\nContent-Type: application/json\r\n",
            id["kiosk_id"],
            id["secret"].as_str().unwrap()
        ),
        Some(&body),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The kiosk's page in headless Chromium at 800×480, 1920×1080 and portrait 1080×1920,
/// while `headline` is on screen: the screenshot is the result screen's colour and the
/// page's text names the member.
fn screenshots(kiosk: &Kiosk, headline: &str) {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(driver) = Driver::start() else {
        return;
    };
    let artifacts = tapkit_e2e::bin("display-kiosk")
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    driver.goto(&format!("http://{}/", kiosk.addr));
    for (w, h) in [(800u64, 480u64), (1920, 1080), (1080, 1920)] {
        driver.viewport(w, h);
        let fitted = || {
            driver.js("var s = document.querySelector('svg'); return [innerWidth, innerHeight, s ? +s.dataset.w : 0, s ? +s.dataset.h : 0, s ? s.getAttribute('aria-label') : '', document.fonts.status]")
        };
        assert!(
            eventually(Duration::from_secs(10), || {
                let v = fitted();
                v[0] == v[2]
                    && v[1] == v[3]
                    && v[4].as_str().unwrap_or("").contains(headline)
                    && v[5] == "loaded"
            }),
            "{w}x{h}: the result screen never fitted the window: {}",
            fitted()
        );
        let shot = driver.call("GET", "/screenshot", None);
        let png = tapkit_core::base64::decode(shot.as_str().unwrap()).unwrap();
        let file = artifacts.join(format!("kiosk-checkin-{w}x{h}.png"));
        std::fs::write(&file, &png).unwrap();
        // Readable from two metres: the headline's letters are at least 1/20 of the
        // screen's shorter side.
        let size = driver.js("var t = document.querySelector('svg text'); return t ? +t.getAttribute('font-size') : 0");
        let short = w.min(h) as f64;
        assert!(
            size.as_f64().unwrap() >= short / 20.0,
            "{w}x{h}: the headline is {size} px"
        );
        // The screenshot is the welcome screen's green, not the booking screen.
        let green = png_pixel_share(&png, [12, 96, 52]);
        assert!(
            green > 0.5,
            "{w}x{h}: {:.0} % green in {}",
            green * 100.0,
            file.display()
        );
    }
}

/// The share of a PNG's pixels that are exactly `rgb`.
fn png_pixel_share(png: &[u8], rgb: [u8; 3]) -> f64 {
    let img = image::load_from_memory(png).unwrap().to_rgb8();
    let same = img.pixels().filter(|p| p.0 == rgb).count();
    same as f64 / (f64::from(img.width()) * f64::from(img.height()))
}

/// The bench behind `scripts/bench-desk.sh` (not a test: it asserts nothing about time).
/// `TAPKIT_BENCH_TAPS` taps of one Premium member's card (unlimited visits), each from the
/// moment pcscd reports the card on the reader to the moment the kiosk's frame shows the
/// answer; prints p50, p95, p99 and the slowest, in ms, as a BENCHMARKS.md row.
#[test]
#[ignore = "a bench: scripts/bench-desk.sh"]
fn bench_card_on_the_reader_to_the_screen() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let taps: usize = std::env::var("TAPKIT_BENCH_TAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("tapkit-deskbenchcfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = config(&dir);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text += "\n[[program.membership.plans]]\nid = \"premium\"\nname = \"Premium\"\nprice_minor = 7900\nvisits = \"unlimited\"\nadd_on_discount_bp = 2000\npriority = \"instant\"\n";
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(
        "deskbench",
        None,
        &[("TAPKIT_CONFIG", cfg.to_str().unwrap())],
    );
    let (_, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    member(&server, "cus_pat", "Pat", "premium");
    let image = dir.join("pat.json");
    provision_members(
        &env,
        &server,
        &dir.join("journal.jsonl"),
        std::slice::from_ref(&image),
    );
    let state = Kiosk::enroll(&server, a["id"].as_i64().unwrap(), "deskbench");
    let kiosk = Kiosk::run(&state, &["--reader", &env.reader0, "--checkin-secs", "2"]);
    let mut ms: Vec<f64> = Vec::with_capacity(taps);
    for _ in 0..taps {
        let (shown, took) = tap(&env, &kiosk, &image);
        assert_eq!(shown["result"], "welcome", "{shown}");
        ms.push(took.as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "| card on the reader → answer on the screen (pcscd + vpcd, SQLite) | {taps} | {:.1} | {:.1} | {:.1} | {:.1} |",
        at(0.5),
        at(0.95),
        at(0.99),
        ms[ms.len() - 1]
    );
    drop(kiosk);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&dir);
}
