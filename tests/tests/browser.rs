//! A real browser: headless Chromium (driven through chromedriver's WebDriver API) opens
//! `/r/{code}` on the running server, follows the redirect to a test booking page, and
//! the test reads back the cookies Chromium actually stored and what the page's
//! JavaScript can see.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`scripts/install-deps.sh browser`);
//! without them the test is skipped with a note, unless `TAPKIT_REQUIRE_BROWSER=1` (set by
//! scripts/test.sh), where that is a failure.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};
use tapkit_e2e::browser::{Driver, ONE_BROWSER};
use tapkit_e2e::{Kiosk, Server, bin, eventually, http_request, kiosk_server_config, zbar};

/// One browser at a time: two chromedrivers started together on this 2-core machine
/// race for ports and time out.

#[test]
fn chromium_stores_the_cookie_pair_as_specified() {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(driver) = Driver::start() else {
        return;
    };
    let site = tapkit_e2e::booking_site();
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

// ------------------------------------------------------------ console and portal

fn artifacts() -> std::path::PathBuf {
    let dir = bin("tapkit-server")
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// axe-core's WCAG 2.1 A/AA rules on the page; panics listing every violation.
fn accessible(driver: &Driver, axe: &str, name: &str) {
    driver.js(&format!("{axe}\n;return true;"));
    let v = driver.js_async(
        "var done = arguments[arguments.length - 1];\
         axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\
           .then(function (r) { done(r.violations.map(function (v) {\
             return v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');\
           })); }, function (e) { done(['axe failed: ' + e]); });",
    );
    let list: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        list.is_empty(),
        "{name}: accessibility violations:\n{}",
        list.join("\n")
    );
}

/// Screenshots `name` at phone and desktop width into target/test-artifacts, checking
/// accessibility and that nothing overflows the phone's width.
fn review(driver: &Driver, axe: &str, name: &str) {
    for (label, w, h) in [("phone", 390, 844), ("desktop", 1280, 900)] {
        driver.viewport(w, h);
        let overflow = driver.js("return document.documentElement.scrollWidth - innerWidth");
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{name} at {label} width scrolls sideways by {overflow} px"
        );
        accessible(driver, axe, &format!("{name} ({label})"));
        let shot = driver.call("GET", "/screenshot", None);
        let png = tapkit_core::base64::decode(shot.as_str().unwrap()).unwrap();
        std::fs::write(artifacts().join(format!("{name}-{label}.png")), png).unwrap();
    }
    // One round trip: no stylesheet, script or font fetched besides the page (the
    // portal's QR image is the one static asset).
    let fetched = driver.js(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })\
           .filter(function (n) { return n.indexOf('/portal/qr.') < 0; })",
    );
    assert_eq!(fetched, json!([]), "{name} fetched more than the page");
}

#[test]
fn an_admin_creates_a_partner_who_signs_in_downloads_the_qr_and_sees_a_suspension() {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let axe_path = std::env::var("TAPKIT_AXE").unwrap_or_else(|_| {
        bin("tapkit-server")
            .parent()
            .and_then(|d| d.parent())
            .unwrap()
            .join("npm/node_modules/axe-core/axe.min.js")
            .display()
            .to_string()
    });
    let Ok(axe) = std::fs::read_to_string(&axe_path) else {
        assert!(
            std::env::var("TAPKIT_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "axe-core is missing at {axe_path}: scripts/test.sh installs it with npm"
        );
        eprintln!("skipped: no axe-core at {axe_path}");
        return;
    };
    let Some(admin) = Driver::start_with(&["--window-size=1280,900".into()]) else {
        return;
    };
    // The sample's membership plans (everything else the defaults), so the members page
    // has tables to review.
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tapkit.sample.toml"),
    )
    .unwrap();
    let plans = &sample[sample.find("[program.membership]").unwrap()..];
    let config = std::env::temp_dir().join(format!(
        "tapkit-browser-console-{}.toml",
        std::process::id()
    ));
    std::fs::write(&config, plans).unwrap();
    let server = Server::start(
        "browser-console",
        None,
        &[("TAPKIT_CONFIG", config.to_str().unwrap())],
    );
    let (status, member) = server.api(
        "POST",
        "/api/admin/members",
        Some(r#"{"customer_id": "cus_browser", "email": "ana@example.com", "plan": "plus"}"#),
    );
    assert_eq!(status, 201, "{member}");
    let out = server.command_with_input(
        &[
            "admin",
            "add",
            "--email",
            "owner@brand.example",
            "--password-stdin",
        ],
        "a long admin passphrase\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = server.url();

    // The partner's browser (another profile: a second browser context) first sees the
    // sign-in forms.
    let partner = Driver::start_with(&["--window-size=1280,900".into()]).unwrap();
    partner.goto(&format!("{base}/portal/earnings"));
    assert!(
        partner.current_url().ends_with("/portal/sign-in"),
        "{}",
        partner.current_url()
    );
    review(&partner, &axe, "portal-sign-in");
    partner.goto(&format!("{base}/admin/affiliates"));
    assert!(partner.current_url().ends_with("/admin/sign-in"));
    review(&partner, &axe, "admin-sign-in");

    // The admin signs in and creates the partner.
    admin.goto(&format!("{base}/admin"));
    assert!(admin.current_url().ends_with("/admin/sign-in"));
    admin.type_into("#email", "owner@brand.example");
    admin.type_into("#password", "a long admin passphrase");
    admin.click_to_load("form[action='/admin/sign-in'] button");
    assert!(
        admin.current_url().ends_with("/admin"),
        "{}: {}",
        admin.current_url(),
        admin.text()
    );
    admin.goto(&format!("{base}/admin/affiliates"));
    admin.type_into("#name", "Shine Auto Detailing");
    admin.type_into("#contact", "owner@shine.example");
    admin.click_to_load("form[method=post][action='/admin/affiliates'] button[type=submit]");
    assert!(
        admin.text().contains("Affiliate created."),
        "{} {}",
        admin.current_url(),
        admin.text()
    );
    let partner_page = admin.current_url();
    let code = admin.js("return document.querySelector('dl.kv dd code').textContent");
    let code = code.as_str().unwrap().to_owned();
    // A few taps so the charts have something to draw.
    for q in ["", "?s=qr", ""] {
        let (status, _, _) = http_request(
            &server.addr,
            "GET",
            &format!("/r/{code}{q}"),
            "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1\r\n",
            None,
        );
        assert_eq!(status, 302);
    }
    // The sign-in link for the partner, shown to the admin (no mail server here).
    admin.goto(&partner_page);
    admin.click_to_load("form[action$='/sign-in-link'] button");
    let link = admin.js("return document.getElementById('signin-link').value");
    let link = link.as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{base}/portal/link/")), "{link}");
    review(&admin, &axe, "admin-affiliate");

    // The partner opens it, presses the button, lands on the portal.
    partner.goto(&link);
    review(&partner, &axe, "portal-link");
    partner.click_to_load("main form button");
    assert!(
        partner.current_url().ends_with("/portal"),
        "{}",
        partner.current_url()
    );
    assert!(partner.text().contains("Hello, Shine Auto Detailing"));
    assert_eq!(
        partner.js("return document.getElementById('partner-link').value"),
        json!(format!("https://book.example.com/r/{code}"))
    );
    // The copy-link script ran under the CSP (it allows that script by its hash, and no
    // 'unsafe-inline'): it unhides its button.
    assert_eq!(
        partner.js("return document.querySelector('[data-copy]').hidden"),
        json!(false),
        "the portal's script did not run under its CSP"
    );
    // The PNG download, fetched as the partner's browser does, decodes to their link.
    let b64 = partner.js_async(
        "var done = arguments[arguments.length - 1];\
         fetch('/portal/qr.png').then(function (r) { return r.arrayBuffer(); }).then(function (b) {\
           var s = ''; var u = new Uint8Array(b); for (var i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);\
           done(btoa(s)); }, function (e) { done('ERR ' + e); });",
    );
    let b64 = b64.as_str().unwrap();
    let png = tapkit_core::base64::decode(b64)
        .unwrap_or_else(|| panic!("not base64: {}", &b64[..b64.len().min(200)]));
    let file = artifacts().join("portal-qr-download.png");
    std::fs::write(&file, &png).unwrap();
    assert_eq!(
        zbar(&file),
        vec![format!("https://book.example.com/r/{code}?s=qr")],
        "the downloaded QR reads as the partner's link"
    );
    review(&partner, &axe, "portal-home");
    partner.goto(&format!("{base}/portal/earnings"));
    assert!(!partner.text().contains("suspended"));
    review(&partner, &axe, "portal-earnings");

    // Every console page, at both widths.
    for (name, path) in [
        ("admin-overview", "/admin".to_owned()),
        ("admin-affiliates", "/admin/affiliates".to_owned()),
        ("admin-members", "/admin/members".to_owned()),
        ("admin-provisioning", "/admin/provisioning".to_owned()),
        ("admin-reviews", "/admin/reviews".to_owned()),
        ("admin-payouts", "/admin/payouts".to_owned()),
        ("admin-exports", "/admin/exports".to_owned()),
        ("admin-program", "/admin/program".to_owned()),
    ] {
        admin.goto(&format!("{base}{path}"));
        assert!(
            admin.current_url().ends_with(&path),
            "{name}: {}",
            admin.current_url()
        );
        review(&admin, &axe, name);
    }
    admin.goto(&format!("{base}/admin"));
    assert!(
        admin.text().contains("3\nclicks")
            || admin.text().contains("3 clicks")
            || admin.js("return document.querySelector('.stat .v').textContent") == json!("3"),
        "{}",
        admin.text()
    );

    // The admin suspends the partner; the partner's earnings page says so.
    admin.goto(&partner_page);
    admin.click_to_load("form[action$='/suspend'] button");
    assert!(admin.text().contains("Suspended"), "{}", admin.text());
    partner.goto(&format!("{base}/portal/earnings"));
    assert!(
        partner
            .text()
            .contains("Your partner account is suspended."),
        "{}",
        partner.text()
    );
    // Signing out ends the partner's session.
    partner.goto(&format!("{base}/portal"));
    partner.click_to_load("header form button");
    assert!(partner.current_url().contains("/portal/sign-in"));
    partner.goto(&format!("{base}/portal/earnings"));
    assert!(partner.current_url().ends_with("/portal/sign-in"));
}
