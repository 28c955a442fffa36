//! A real browser: headless Chromium (driven through chromedriver's WebDriver API) opens
//! `/r/{code}` on the running server, follows the redirect to a test booking page, and
//! the test reads back the cookies Chromium actually stored and what the page's
//! JavaScript can see.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`scripts/install-deps.sh browser`);
//! without them the test is skipped with a note, unless `TAPKIT_REQUIRE_BROWSER=1` (set by
//! scripts/test.sh), where that is a failure.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tapkit_e2e::{
    KillOnDrop, Kiosk, Server, bin, eventually, free_port, http_request, kiosk_server_config, zbar,
};

/// The booking site's page: shows what its JavaScript sees of the cookies.
const BOOKING_PAGE: &str = "<!doctype html><html lang=en><head><title>Book</title></head>\
<body><h1>Book a detail</h1><p id=seen></p>\
<script>document.getElementById('seen').textContent = document.cookie;</script></body></html>";

fn booking_site() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BOOKING_PAGE}",
                BOOKING_PAGE.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    port
}

/// One browser at a time: two chromedrivers started together on this 2-core machine
/// race for ports and time out.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

static NEXT_PROFILE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Driver {
    addr: String,
    session: String,
    _chromedriver: KillOnDrop,
    _profile: std::path::PathBuf,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, _, text) = http_request(
            &self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            "",
            body.as_deref(),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    fn start_with(extra_args: &[String]) -> Option<Self> {
        let have = std::path::Path::new("/usr/bin/chromium").exists()
            && std::path::Path::new("/usr/bin/chromedriver").exists();
        if !have {
            if std::env::var("TAPKIT_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!(
                    "TAPKIT_REQUIRE_BROWSER=1 but chromium/chromedriver are missing: scripts/install-deps.sh browser"
                );
            }
            eprintln!("skipped: no chromium + chromedriver (scripts/install-deps.sh browser)");
            return None;
        }
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = KillOnDrop(child);
        let addr = format!("127.0.0.1:{port}");
        let t = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = std::env::temp_dir().join(format!(
            "tapkit-chromium-{}-{}",
            std::process::id(),
            NEXT_PROFILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .chain(extra_args.iter().cloned())
        .collect();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        }}});
        let (status, _, text) =
            http_request(&addr, "POST", "/session", "", Some(&caps.to_string()));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200, "new session: {v}");
        Some(Self {
            addr,
            session: v["value"]["sessionId"].as_str().unwrap().to_owned(),
            _chromedriver: child,
            _profile: profile,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http_request(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
            None,
        );
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

#[test]
fn chromium_stores_the_cookie_pair_as_specified() {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(driver) = Driver::start() else {
        return;
    };
    let site = booking_site();
    let dir = std::env::temp_dir().join(format!("tapkit-browser-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tapkit.toml");
    std::fs::write(
        &config,
        format!(
            "[program]\nname = \"Browser test\"\ndomain = \"book.example.com\"\nbooking_url = \"http://127.0.0.1:{site}/booking\"\ncookie_days = 30\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        "browser",
        None,
        &[("TAPKIT_CONFIG", config.to_str().unwrap())],
    );
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Café Zürich & Co.", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let code = a["code"].as_str().unwrap();

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    driver.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("http://{}/r/{code}?s=qr", server.addr) })),
    );
    let url = driver.call("GET", "/url", None);
    assert_eq!(
        url,
        format!("http://127.0.0.1:{site}/booking"),
        "followed the 302"
    );

    let cookies = driver.call("GET", "/cookie", None);
    let cookies = cookies.as_array().unwrap();
    let find = |name: &str| {
        cookies
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("Chromium did not store {name}: {cookies:?}"))
            .clone()
    };
    let http_only = find("tapkit_ref");
    let readable = find("tapkit_ref_js");
    for (c, want_http_only) in [(&http_only, true), (&readable, false)] {
        assert_eq!(c["httpOnly"], want_http_only, "{c}");
        assert_eq!(c["secure"], true, "{c}");
        assert_eq!(c["sameSite"], "Lax", "{c}");
        assert_eq!(c["path"], "/", "{c}");
        let expiry = c["expiry"].as_f64().unwrap();
        let days = (expiry - before) / 86_400.0;
        assert!((29.9..30.1).contains(&days), "expires in {days} days: {c}");
        assert!(
            c["value"].as_str().unwrap().starts_with("v1."),
            "a signed token: {c}"
        );
    }
    assert_eq!(http_only["value"], readable["value"]);

    // The page's JavaScript sees the readable copy and not the HttpOnly one.
    let seen = driver.call(
        "POST",
        "/execute/sync",
        Some(json!({ "script": "return document.cookie", "args": [] })),
    );
    let seen = seen.as_str().unwrap();
    let names: Vec<&str> = seen
        .split("; ")
        .filter_map(|kv| kv.split('=').next())
        .collect();
    assert_eq!(names, vec!["tapkit_ref_js"], "document.cookie = {seen:?}");
    let shown = driver.call(
        "POST",
        "/execute/sync",
        Some(json!({ "script": "return document.getElementById('seen').textContent", "args": [] })),
    );
    assert_eq!(
        shown.as_str(),
        Some(seen),
        "the page script saw the same on load"
    );

    // A second visit through another partner's link keeps the first attribution
    // (first-touch): the cookie value does not change.
    let (_, b) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Glow Day Spa", "kind": "business"}"#),
    );
    driver.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("http://{}/r/{}", server.addr, b["code"].as_str().unwrap()) })),
    );
    let again = driver.call("GET", "/cookie", None);
    let again_value = again
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tapkit_ref")
        .unwrap()["value"]
        .clone();
    assert_eq!(again_value, http_only["value"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The counter display in a real browser at the sizes of real counter screens (landscape
/// and portrait): the screenshot's QR, read by zbar, is a kiosk URL the server accepts.
/// Screenshots are kept in target/test-artifacts/ for review.
#[test]
fn the_kiosk_page_shows_a_scannable_qr_at_counter_screen_sizes() {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if Driver::start_with(&[]).is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tapkit-kioskcfg-browser-{}", std::process::id()));
    let config = kiosk_server_config(&dir, "https://book.example.com/");
    let server = Server::start(
        "browser-kiosk",
        None,
        &[("TAPKIT_CONFIG", config.to_str().unwrap())],
    );
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Shine Auto Detailing", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let code = a["code"].as_str().unwrap().to_owned();
    let state = Kiosk::enroll(&server, a["id"].as_i64().unwrap(), "browser");
    let kiosk = Kiosk::run(&state, &[]);
    let artifacts = bin("display-kiosk")
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (w, h) in [(800, 480), (1920, 1080), (480, 800), (1080, 1920)] {
        let driver = Driver::start_with(&[format!("--window-size={w},{h}")]).unwrap();
        driver.call(
            "POST",
            "/url",
            Some(json!({ "url": format!("http://{}/", kiosk.addr) })),
        );
        // Headless Chromium's window includes room for browser chrome: grow the window
        // by that much so the page's viewport is exactly the counter screen.
        let chrome = driver.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": "return [outerWidth - innerWidth, outerHeight - innerHeight]", "args": [] })),
        );
        driver.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": w + chrome[0].as_u64().unwrap(), "height": h + chrome[1].as_u64().unwrap() })),
        );
        let viewport = || {
            driver.call(
                "POST",
                "/execute/sync",
                Some(json!({ "script": "var s = document.querySelector('svg'); return [innerWidth, innerHeight, s ? +s.dataset.w : 0, s ? +s.dataset.h : 0, document.fonts.status]", "args": [] })),
            )
        };
        // The script has laid the frame out for this window, and the fonts are loaded.
        assert!(
            eventually(Duration::from_secs(10), || {
                let v = viewport();
                v[0] == v[2] && v[1] == v[3] && v[4] == "loaded"
            }),
            "{w}x{h}: the frame never fitted the window: {}",
            viewport()
        );
        let v = viewport();
        assert_eq!(
            (v[0].as_u64(), v[1].as_u64()),
            (Some(w), Some(h)),
            "the viewport is the screen"
        );
        let shot = driver.call("GET", "/screenshot", None);
        let png = tapkit_core::base64::decode(shot.as_str().unwrap()).unwrap();
        let file = artifacts.join(format!("kiosk-{w}x{h}.png"));
        std::fs::write(&file, &png).unwrap();
        let read = zbar(&file);
        assert_eq!(
            read.len(),
            1,
            "{w}x{h}: zbar read {read:?} from {}",
            file.display()
        );
        let prefix = format!("https://book.example.com/r/{code}?k=");
        assert!(read[0].starts_with(&prefix), "{w}x{h}: {}", read[0]);
        let path = read[0].strip_prefix("https://book.example.com").unwrap();
        let (status, head, _) = http_request(
            &server.addr,
            "GET",
            path,
            "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1\r\n",
            None,
        );
        assert_eq!(status, 302);
        assert!(
            head.contains("set-cookie: tapkit_ref="),
            "{w}x{h}: the scanned token attributes: {head}"
        );
        // The brand and the call to action are on the page, as text a screen reader finds.
        let label = driver.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": "return document.querySelector('svg').getAttribute('aria-label')", "args": [] })),
        );
        assert!(
            label
                .as_str()
                .unwrap()
                .contains("Tap your phone here to book"),
            "{label}"
        );
    }
    drop(kiosk);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&dir);
}
