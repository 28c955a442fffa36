//! `display-kiosk` as a real process against a real `tapkit-server`: enrolment (and a
//! reused code refused), the rotating QR verified by the server, a config change reaching
//! the screen, the snapshot decoded by zbar, starting with the server down (from the
//! cache), and recovering by itself when the server dies and returns mid-heartbeats.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use tapkit_e2e::{
    Kiosk, Server, bin, eventually, http_request, kiosk_server_config, stderr, stdout, zbar,
};

fn server(tag: &str) -> (Server, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tapkit-kioskcfg-{tag}-{}", std::process::id()));
    let config = kiosk_server_config(&dir, "https://book.example.com/");
    let server = Server::start(tag, None, &[("TAPKIT_CONFIG", config.to_str().unwrap())]);
    (server, dir)
}

fn partner(server: &Server, name: &str) -> (i64, String) {
    let (st, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(&serde_json::json!({"name": name, "kind": "business"}).to_string()),
    );
    assert_eq!(st, 201, "{a}");
    (
        a["id"].as_i64().unwrap(),
        a["code"].as_str().unwrap().to_owned(),
    )
}

fn kiosk_view(server: &Server) -> serde_json::Value {
    let (st, v) = server.api("GET", "/api/admin/kiosks", None);
    assert_eq!(st, 200, "{v}");
    v["kiosks"][0].clone()
}

/// The shape `https://book.example.com/r/{code}?k={kiosk}.{step}.{16 hex}`.
fn assert_kiosk_url(url: &str, code: &str) {
    let prefix = format!("https://book.example.com/r/{code}?k=");
    let token = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url:?} does not start with {prefix}"));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert!(
        parts[0].parse::<i64>().is_ok() && parts[1].parse::<i64>().is_ok(),
        "{token}"
    );
    assert!(
        parts[2].len() == 16 && parts[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
}

/// Opens the QR's URL on the server as a phone would: the 302 and whether it attributed.
fn scan(server: &Server, url: &str) -> bool {
    let path = url.strip_prefix("https://book.example.com").unwrap();
    let (status, head, _) = http_request(
        &server.addr,
        "GET",
        path,
        "User-Agent: Mozilla/5.0 (Linux; Android 14) Chrome/126 Mobile\r\n",
        None,
    );
    assert_eq!(status, 302, "{head}");
    head.contains("set-cookie: tapkit_ref=")
}

#[test]
fn a_kiosk_enrolls_shows_a_rotating_qr_and_its_scans_count() {
    let (server, cfg_dir) = server("kiosk-main");
    let (aff, code) = partner(&server, "Shine Auto Detailing");

    // Before enrolment, `run` says what to do.
    let state = std::env::temp_dir().join(format!("tapkit-kiosk-none-{}", std::process::id()));
    let out = Command::new(bin("display-kiosk"))
        .args(["run", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("display-kiosk enroll --server URL --code CODE"),
        "{}",
        stderr(&out)
    );

    // Enrolment; the same code again is refused with a clear message.
    let (st, k) = server.api(
        "POST",
        "/api/admin/kiosks",
        Some(&serde_json::json!({ "affiliate_id": aff }).to_string()),
    );
    assert_eq!(st, 201, "{k}");
    let enrol_code = k["enrollment_code"].as_str().unwrap();
    let enroll = |dir: &std::path::Path| {
        Command::new(bin("display-kiosk"))
            .args([
                "enroll",
                "--server",
                &server.url(),
                "--code",
                enrol_code,
                "--state-dir",
            ])
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = enroll(&state);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("for partner {code}")),
        "{}",
        stdout(&out)
    );
    let again = enroll(&state.with_extension("second"));
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already used"),
        "{}",
        stderr(&again)
    );
    let id = std::fs::metadata(state.join("identity.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&id.permissions()) & 0o777,
        0o600
    );

    // Running: the heartbeat makes it online; its QR carries a token the server accepts.
    let kiosk = Kiosk::run(&state, &[]);
    assert!(
        eventually(Duration::from_secs(15), || kiosk_view(&server)["status"]
            == "online"),
        "never online: {} / {}",
        kiosk_view(&server),
        kiosk.log()
    );
    let v = kiosk_view(&server);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["last_seen"].as_str().unwrap().ends_with('Z'));
    let url = kiosk.qr_url(800, 480);
    assert_kiosk_url(&url, &code);
    assert!(scan(&server, &url), "a fresh kiosk token attributes");
    // A token from an hour ago (a photo of the screen) redirects without attribution.
    let parts: Vec<&str> = url.rsplit("?k=").next().unwrap().split('.').collect();
    let identity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("identity.json")).unwrap())
            .unwrap();
    let secret = tapkit_core::hex::decode(identity["secret"].as_str().unwrap()).unwrap();
    let old = tapkit_core::kiosk::sign(
        &secret,
        parts[0].parse().unwrap(),
        parts[1].parse::<i64>().unwrap() - 60,
    );
    assert!(!scan(
        &server,
        &format!("https://book.example.com/r/{code}?k={old}")
    ));
    let reason = Command::new("sqlite3")
        .arg(server.dir.join("tapkit.db"))
        .arg("SELECT channel || ' ' || outcome || ' ' || reason FROM clicks ORDER BY id DESC LIMIT 1")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&reason).trim(),
        "kiosk unattributed stale_kiosk_token"
    );

    // A change made in the admin API reaches the screen (next heartbeat: 5 s here).
    let kid = v["id"].as_i64().unwrap();
    let (st, p) = server.api(
        "PATCH",
        &format!("/api/admin/kiosks/{kid}"),
        Some(r#"{"tagline": "Tap the pad to book your detail"}"#),
    );
    assert_eq!(st, 200, "{p}");
    assert!(
        eventually(Duration::from_secs(20), || kiosk
            .get("/frame.svg?w=800&h=480")
            .1
            .contains("Tap the pad to book")),
        "the new tagline never showed: {}",
        kiosk.log()
    );
    assert!(eventually(Duration::from_secs(10), || {
        kiosk_view(&server)["config_version"] == kiosk.status()["config_version"]
    }));

    // The page is a complete document that loads the frame and the fonts from the kiosk.
    let (st, html) = kiosk.get("/");
    assert_eq!(st, 200);
    assert!(
        html.contains("<html lang=\"en\">")
            && html.contains("/frame.svg")
            && html.contains("/font/bold.ttf")
    );
    assert_eq!(kiosk.get("/font/bold.ttf").0, 200);

    // The snapshot: the same frame as pixels, its QR read by zbar.
    for size in ["800x480", "1080x1920"] {
        let png = state.with_extension(format!("{size}.png"));
        let out = Command::new(bin("display-kiosk"))
            .args(["snapshot", "--size", size, "--state-dir"])
            .arg(&state)
            .arg(&png)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let read = zbar(&png);
        assert_eq!(read.len(), 1, "{size}: {read:?}");
        assert_kiosk_url(&read[0], &code);
        let _ = std::fs::remove_file(png);
    }
    let out = Command::new(bin("display-kiosk"))
        .args(["snapshot", "--size", "800by480", "--state-dir"])
        .arg(&state)
        .arg("x.png")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("800x480"), "{}", stderr(&out));

    drop(kiosk);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&cfg_dir);
}

#[test]
fn the_kiosk_starts_from_its_cache_and_recovers_when_the_server_returns() {
    let (mut server, cfg_dir) = server("kiosk-offline");
    let (aff, code) = partner(&server, "Glow Day Spa");
    let state = Kiosk::enroll(&server, aff, "offline");

    // The server is down when the kiosk boots: it shows the cached config and a QR.
    server.kill();
    let kiosk = Kiosk::run(&state, &["--max-backoff-secs", "3"]);
    let url = kiosk.qr_url(1920, 1080);
    assert_kiosk_url(&url, &code);
    assert!(eventually(Duration::from_secs(10), || {
        let s = kiosk.status();
        s["online"] == false
            && s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot reach"))
    }));

    // The server comes back: the kiosk finds it by itself.
    server.spawn();
    assert!(
        eventually(Duration::from_secs(20), || kiosk_view(&server)["status"]
            == "online"),
        "not back online: {}",
        kiosk.log()
    );
    assert_eq!(kiosk.status()["online"], true);
    assert!(scan(&server, &kiosk.qr_url(800, 480)));

    // The network drops mid-heartbeats (the server dies), then returns.
    server.kill();
    let before = kiosk.status()["heartbeats_failed"].as_u64().unwrap();
    assert!(eventually(
        Duration::from_secs(15),
        || kiosk.status()["online"] == false
    ));
    // Stay down for three retries (backoff 2 s, then capped at 3 s here).
    assert!(eventually(Duration::from_secs(25), || {
        kiosk.status()["heartbeats_failed"].as_u64().unwrap() >= before + 3
    }));
    let url = kiosk.qr_url(800, 480);
    assert_kiosk_url(&url, &code);
    server.spawn();
    assert!(
        eventually(Duration::from_secs(20), || kiosk.status()["online"] == true),
        "{}",
        kiosk.log()
    );
    // Offline for a while without flooding the log: one line per change, then 1, 2, 4 …
    let warnings = kiosk.log().matches("heartbeat failed").count();
    let failed = kiosk.status()["heartbeats_failed"].as_u64().unwrap();
    assert!(failed >= 3, "{failed}");
    assert!(
        warnings < failed as usize,
        "{warnings} warnings for {failed} failures: {}",
        kiosk.log()
    );
    drop(kiosk);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&cfg_dir);
}
