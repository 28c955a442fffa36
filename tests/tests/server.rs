//! `tapkit-server` as a real process: `token create` prints only the token, `serve` is
//! configured by TAPKIT_DATABASE_URL / TAPKIT_LISTEN, the admin API creates an
//! affiliate over real HTTP and `/r/{code}` redirects with the cookie pair.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use tapkit_e2e::{Server, http_request};

#[test]
fn the_server_binary_serves_the_admin_api_and_the_redirect() {
    // Server::start runs `token create` (its stdout is the token) and `serve` configured
    // by TAPKIT_DATABASE_URL / TAPKIT_LISTEN / TAPKIT_DATA_DIR.
    let mut server = Server::start("srv", None, &[]);
    let out = server.command(&["token", "create", "--name", "e2e"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        token.starts_with("tk_") && token.trim().len() == 67 && token.lines().count() == 1,
        "only the token: {token:?}"
    );
    // The new token works as well as the first one.
    let (status, _, _) = http_request(
        &server.addr,
        "GET",
        "/api/admin/affiliates",
        &format!("Authorization: Bearer {}\r\n", token.trim()),
        None,
    );
    assert_eq!(status, 200);

    // `token list` names them without showing them; `token revoke` ends one at once.
    let out = server.command(&["token", "list"]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && list.lines().count() == 2, "{list}");
    assert!(!list.contains("tk_"), "tokens are never shown: {list}");
    let second_id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let out = server.command(&["token", "revoke", "--id", second_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _, _) = http_request(
        &server.addr,
        "GET",
        "/api/admin/affiliates",
        &format!("Authorization: Bearer {}\r\n", token.trim()),
        None,
    );
    assert_eq!(status, 401, "a revoked token is refused");
    // Revoked twice, or a made-up id: said so; a new token never takes a revoked id.
    for id in [second_id, "999"] {
        let out = server.command(&["token", "revoke", "--id", id]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("no live token with id {id}")),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = server.command(&["token", "create", "--name", "third"]);
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&server.command(&["token", "list"]).stdout).into_owned();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(second_id)),
        "{list}"
    );
    let out = server.command(&["token", "revoke", "--id", "999"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no live token with id 999"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let code = a["code"].as_str().unwrap();

    let (status, head, _) = http_request(
        &server.addr,
        "GET",
        &format!("/r/{code}"),
        "User-Agent: Mozilla/5.0 Firefox\r\n",
        None,
    );
    assert_eq!(status, 302, "{head}");
    assert!(
        head.contains("location: https://book.example.com/"),
        "{head}"
    );
    assert_eq!(head.matches("set-cookie: tapkit_ref").count(), 2, "{head}");

    let (status, _, _) = http_request(&server.addr, "GET", "/api/admin/affiliates", "", None);
    assert_eq!(status, 401);

    // SIGTERM: a graceful stop.
    let status = server.terminate().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}

/// The click id inside a `tapkit_ref=v1.<click>.<ms>.<mac>` Set-Cookie header.
fn click_id(head: &str) -> Option<i64> {
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: tapkit_ref=v1."))
        .and_then(|v| v.split('.').next())
        .and_then(|id| id.parse().ok())
}

/// Clients on 16 threads, each sending `path(thread, n)` for n = 1, 2, … until the
/// server dies; returns (thread, n, click id) of every whole 302 that came back.
fn hammer_until_killed(
    server: &mut Server,
    path: fn(usize, u32) -> String,
) -> Vec<(usize, u32, i64)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let received = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for thread in 0..16 {
        let addr = server.addr.clone();
        let (received, stop) = (received.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let Ok(mut s) = TcpStream::connect(&addr) else {
                    return;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "GET {} HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 crash-test\r\nConnection: close\r\n\r\n",
                    path(thread, n)
                );
                if s.write_all(req.as_bytes()).is_err() {
                    return;
                }
                let mut resp = Vec::new();
                if s.read_to_end(&mut resp).is_err() {
                    return;
                }
                let resp = String::from_utf8_lossy(&resp);
                // Only a whole 302 counts as received.
                if resp.starts_with("HTTP/1.1 302")
                    && let Some(id) = click_id(&resp)
                {
                    received.lock().unwrap().push((thread, n, id));
                }
            }
        }));
    }
    // Under load for a moment, then a crash: no shutdown, no flush.
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    received.lock().unwrap().clone()
}

/// The rows of the server's clicks table: id → (counter, outcome, reason).
fn stored_clicks(server: &Server) -> std::collections::HashMap<i64, (Option<i64>, String, String)> {
    let out = Command::new("sqlite3")
        .arg(server.dir.join("tapkit.db"))
        .arg("SELECT id, COALESCE(counter, ''), outcome, COALESCE(reason, '') FROM clicks")
        .output()
        .expect("the sqlite3 shell (scripts/install-deps.sh sqlite)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            Some((
                f.first()?.parse().ok()?,
                (
                    f.get(1)?.parse().ok(),
                    (*f.get(2)?).to_owned(),
                    (*f.get(3)?).to_owned(),
                ),
            ))
        })
        .collect()
}

#[test]
fn sigkill_under_load_loses_no_click_whose_redirect_was_received() {
    let mut server =
        tapkit_e2e::Server::start("crash", None, &[("TAPKIT_RATE_LIMIT_PER_HOUR", "0")]);
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let code = a["code"].as_str().unwrap().to_owned();
    CODE.set(code).unwrap();
    let received: Vec<i64> = hammer_until_killed(&mut server, |_, _| {
        format!("/r/{}?s=qr", CODE.get().unwrap())
    })
    .into_iter()
    .map(|(_, _, id)| id)
    .collect();
    assert!(
        received.len() > 100,
        "only {} redirects before the kill",
        received.len()
    );

    // Restart on the same file: it opens (WAL recovery) and serves.
    server.spawn();
    let (status, _) = server.api("GET", "/api/admin/cards", None);
    assert_eq!(status, 200);
    let stored: std::collections::HashSet<i64> = stored_clicks(&server).into_keys().collect();
    let missing: Vec<&i64> = received.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} clicks whose 302 was received are gone after SIGKILL: {:?}",
        missing.len(),
        received.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "crash test: {} redirects received before SIGKILL, all {} stored ({} rows in all)",
        received.len(),
        received.len(),
        stored.len()
    );
}

/// The referral code the crash tests' clients tap (their path function is a plain `fn`).
static CODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// Likewise for the NFC crash test, which runs in the same process.
static NFC_CODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The card URL of client `thread` at its `n`th tap, as the chip's mirror fills it in.
fn nfc_path(thread: usize, n: u32) -> String {
    format!(
        "/r/{}?m=04A1B2C3D4E5{thread:02X}x{n:06X}",
        NFC_CODE.get().unwrap()
    )
}

#[test]
fn sigkill_under_nfc_load_keeps_every_acknowledged_tap_and_its_counter() {
    let mut server =
        tapkit_e2e::Server::start("nfc-crash", None, &[("TAPKIT_RATE_LIMIT_PER_HOUR", "0")]);
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    NFC_CODE
        .set(a["code"].as_str().unwrap().to_owned())
        .unwrap();
    let aff = a["id"].as_i64().unwrap();
    // One card per client: each taps its own card with a rising counter.
    for thread in 0..16 {
        let (status, c) = server.api(
            "POST",
            "/api/admin/cards",
            Some(&format!(
                r#"{{"affiliate_id": {aff}, "uid": "04A1B2C3D4E5{thread:02X}"}}"#
            )),
        );
        assert_eq!(status, 201, "{c}");
    }
    let received = hammer_until_killed(&mut server, nfc_path);
    assert!(
        received.len() > 50,
        "only {} taps before the kill",
        received.len()
    );

    server.spawn();
    let stored = stored_clicks(&server);
    // Every tap whose 302 came back is stored, attributed, with its counter.
    for (thread, n, id) in &received {
        assert_eq!(
            stored.get(id).map(|(c, o, _)| (*c, o.as_str())),
            Some((Some(i64::from(*n)), "attributed")),
            "tap {n} of card {thread} (click {id})"
        );
    }
    // Replaying an acknowledged URL is flagged: the counter it advanced survived.
    for (thread, n, _) in received.iter().step_by(received.len() / 8 + 1) {
        let (status, head, _) = http_request(
            &server.addr,
            "GET",
            &nfc_path(*thread, *n),
            "User-Agent: Mozilla/5.0 replay\r\n",
            None,
        );
        assert_eq!(status, 302);
        assert!(
            !head.contains("set-cookie"),
            "a replay earns no cookie: {head}"
        );
    }
    let replays = stored_clicks(&server)
        .values()
        .filter(|(_, o, r)| o == "flagged" && r == "replayed_counter")
        .count();
    assert_eq!(
        replays,
        received.iter().step_by(received.len() / 8 + 1).count()
    );
    eprintln!(
        "NFC crash test: {} taps acknowledged before SIGKILL, all stored with their counters",
        received.len()
    );
}
