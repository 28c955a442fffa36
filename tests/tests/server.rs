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
