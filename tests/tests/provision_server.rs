//! `provisioner provision --server`: the partner list comes from a real `tapkit-server`,
//! each verified card is registered to its affiliate, and registrations that fail while
//! the server is unreachable are retried by the next run with the same journal.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Output;

use tapkit_e2e::{FlakyProxy, Server, bin};

fn provision(server_url: &str, token: &str, journal: &Path) -> Output {
    std::process::Command::new(bin("provisioner"))
        .args(["provision", "--server", server_url, "--reader", "sim"])
        .arg("--journal")
        .arg(journal)
        .args(["--non-interactive", "--json"])
        .env("TAPKIT_ADMIN_TOKEN", token)
        // No config file from the machine running the tests.
        .env("XDG_CONFIG_HOME", journal.parent().unwrap())
        .output()
        .unwrap()
}

fn events(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(ev: &[serde_json::Value]) -> &serde_json::Value {
    ev.iter().find(|e| e["event"] == "summary").unwrap()
}

#[test]
fn server_down_during_registration_then_retried() {
    let server = Server::start("prov-server", None, &[]);
    let names = ["Iron Gym", "Café Zürich & Co.", "Łódź Książki"];
    let mut ids = Vec::new();
    for n in names {
        let (status, a) = server.api(
            "POST",
            "/api/admin/affiliates",
            Some(&serde_json::json!({ "name": n, "kind": "business" }).to_string()),
        );
        assert_eq!(status, 201, "{a}");
        ids.push(a["id"].as_i64().unwrap());
    }
    let journal = server.dir.join("journal.jsonl");

    // The server answers the partner list and the first registration, then goes away.
    let proxy = FlakyProxy::start(&server.addr, 2);
    let out = provision(&format!("http://{}", proxy.addr), &server.token, &journal);
    assert_eq!(
        out.status.code(),
        Some(1),
        "cards written but not all registered is not a success: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 written cards are not registered with the server yet"),
        "{stderr}"
    );
    let ev = events(&out);
    let s = summary(&ev);
    assert_eq!(
        (s["done"].as_u64(), s["registration_pending"].as_u64()),
        (Some(3), Some(2)),
        "{s}"
    );
    let cards: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "card").collect();
    assert_eq!(cards[0]["server_registered"], true);
    assert_eq!(cards[1]["server_registered"], false);
    assert!(
        cards[1]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Tapkit server"),
        "{}",
        cards[1]
    );
    let (_, listed) = server.api("GET", "/api/admin/cards", None);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (_, needing) = server.api("GET", "/api/admin/affiliates?needs_card=true", None);
    assert_eq!(needing.as_array().unwrap().len(), 2);

    // Back online: the re-run registers the two pending cards and writes no card.
    let out = provision(&server.url(), &server.token, &journal);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let s = summary(&ev);
    assert_eq!(
        (
            s["done"].as_u64(),
            s["registered_late"].as_u64(),
            s["registration_pending"].as_u64()
        ),
        (Some(0), Some(2), Some(0)),
        "{s}"
    );
    assert!(
        !ev.iter().any(|e| e["event"] == "next"),
        "no card asked for"
    );

    // The server now has each partner's card, with the UID the journal recorded.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (_, listed) = server.api("GET", "/api/admin/cards", None);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (id, name) in ids.iter().zip(names) {
        let written = lines
            .iter()
            .find(|e| e["outcome"] == "written" && e["partner"] == name)
            .unwrap();
        assert_eq!(written["affiliate_id"].as_i64(), Some(*id));
        let card = listed
            .iter()
            .find(|c| c["affiliate_id"].as_i64() == Some(*id))
            .unwrap();
        assert_eq!(card["uid"], written["uid"], "{name}");
        assert!(
            written["url"]
                .as_str()
                .unwrap()
                .starts_with("https://book.example.com/r/")
        );
    }
    let (_, needing) = server.api("GET", "/api/admin/affiliates?needs_card=true", None);
    assert_eq!(needing.as_array().unwrap().len(), 0);

    // A third run has nothing to do and says so.
    let out = provision(&server.url(), &server.token, &journal);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Every affiliate"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The print shop's PDF for every active affiliate, from the same source.
    let pdf = server.dir.join("cards.pdf");
    let out = std::process::Command::new(bin("provisioner"))
        .args(["print", "--server", &server.url(), "--all", "--out"])
        .arg(&pdf)
        .env("TAPKIT_ADMIN_TOKEN", &server.token)
        .env("XDG_CONFIG_HOME", &server.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("3 cards on"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_wrong_token_or_an_unreachable_server_is_a_clear_error() {
    let server = Server::start("prov-token", None, &[]);
    let journal = server.dir.join("j.jsonl");
    let out = provision(&server.url(), "tk_wrong", &journal);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused the admin token") && err.contains("token create"),
        "{err}"
    );
    let out = provision(
        &format!("http://127.0.0.1:{}", tapkit_e2e::free_port()),
        "tk_x",
        &journal,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the Tapkit server"), "{err}");
    // Neither --csv nor --server.
    let out = std::process::Command::new(bin("provisioner"))
        .args(["provision", "--reader", "sim"])
        .env("XDG_CONFIG_HOME", &server.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give --csv FILE") && err.contains("--server URL"),
        "{err}"
    );
}
