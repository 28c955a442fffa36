//! `tapkit-server` as a real process: `token create` prints only the token, `serve` is
//! configured by TAPKIT_DATABASE_URL / TAPKIT_LISTEN, the admin API creates an
//! affiliate over real HTTP and `/r/{code}` redirects with the cookie pair.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_server_binary_serves_the_admin_api_and_the_redirect() {
    let dir = std::env::temp_dir().join(format!("tapkit-srv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let env = [
        (
            "TAPKIT_DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        ),
        ("TAPKIT_LISTEN", addr.clone()),
        ("TAPKIT_DATA_DIR", dir.display().to_string()),
    ];
    let token = Command::new(tapkit_e2e::bin("tapkit-server"))
        .args(["token", "create", "--name", "e2e"])
        .envs(env.clone())
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap();
    assert!(
        token.starts_with("tk_") && token.trim().len() == 67 && token.lines().count() == 1,
        "only the token: {token:?}"
    );
    let token = token.trim();

    let mut server = Command::new(tapkit_e2e::bin("tapkit-server"))
        .arg("serve")
        .envs(env)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if TcpStream::connect(&addr).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the server did not start listening on {addr}");

    let body = r#"{"name": "Iron Gym", "kind": "business"}"#;
    let resp = http(
        &addr,
        &format!(
            "POST /api/admin/affiliates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    let json: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let code = json["code"].as_str().unwrap();

    let resp = http(
        &addr,
        &format!(
            "GET /r/{code} HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 Firefox\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 302"), "{resp}");
    assert!(
        resp.contains("location: https://book.example.com/"),
        "{resp}"
    );
    assert_eq!(resp.matches("set-cookie: tapkit_ref").count(), 2, "{resp}");

    let resp = http(
        &addr,
        "GET /api/admin/affiliates HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");

    // SIGTERM: a graceful stop.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The click id inside a `tapkit_ref=v1.<click>.<ms>.<mac>` Set-Cookie header.
fn click_id(head: &str) -> Option<i64> {
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: tapkit_ref=v1."))
        .and_then(|v| v.split('.').next())
        .and_then(|id| id.parse().ok())
}

#[test]
fn sigkill_under_load_loses_no_click_whose_redirect_was_received() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let mut server =
        tapkit_e2e::Server::start("crash", None, &[("TAPKIT_RATE_LIMIT_PER_HOUR", "0")]);
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(r#"{"name": "Iron Gym", "kind": "business"}"#),
    );
    assert_eq!(status, 201, "{a}");
    let code = a["code"].as_str().unwrap().to_owned();

    let received = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (addr, code) = (server.addr.clone(), code.clone());
        let (received, stop) = (received.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(&addr) else {
                    return;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "GET /r/{code}?s=qr HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 crash-test\r\nConnection: close\r\n\r\n"
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
                    received.lock().unwrap().push(id);
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
    let received = received.lock().unwrap().clone();
    assert!(
        received.len() > 100,
        "only {} redirects before the kill",
        received.len()
    );

    // Restart on the same file: it opens (WAL recovery) and serves.
    server.spawn();
    let (status, _) = server.api("GET", "/api/admin/cards", None);
    assert_eq!(status, 200);
    let db = server.dir.join("tapkit.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT id FROM clicks")
        .output()
        .expect("the sqlite3 shell (scripts/install-deps.sh sqlite)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: std::collections::HashSet<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
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
