//! NTAG 424 DNA taps through the real server, on SQLite and PostgreSQL: the key file
//! `provisioner keys new` makes, read by the server as `TAPKIT_SUN_KEYS_FILE`; SUN URLs
//! made the way the chip makes them (`tapkit_core::ntag424`, the card's side); the click
//! rows read back from the database itself.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

use tapkit_core::ntag424::keyfile::KeyFile;
use tapkit_core::ntag424::keys::FILE_SLOT;
use tapkit_core::ntag424::sun::{Picc, decrypt_picc, encrypt_picc, sdm_mac};
use tapkit_e2e::{
    Server, SimCard, http_request, independent_read, pcsc_env, postgres_database, provisioner,
    stderr, stdout, wait_card,
};

const UID: [u8; 7] = [0x04, 0x5A, 0x11, 0x22, 0x33, 0x44, 0x55];
const BROWSER: &str = "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)\r\n";

/// A fresh key file from the provisioner, outside the server's data directory.
fn key_file(tag: &str) -> (std::path::PathBuf, KeyFile) {
    let dir = std::env::temp_dir().join(format!("tapkit-sunkeys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sun-keys");
    let out = provisioner(&["keys", "new", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    let file = KeyFile::parse(&text).unwrap();
    let master = file.current().unwrap();
    // The key is never printed.
    assert!(
        !stdout(&out).contains(&master.key_hex()),
        "{}",
        stdout(&out)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is owner-only");
    }
    (path, file)
}

/// A server on SQLite (or `pg`) holding a fresh key file from the provisioner as
/// `TAPKIT_SUN_KEYS_FILE`, rate limit off: the key file's path, its keys, the server.
fn sun_server(tag: &str, pg: Option<&str>) -> (std::path::PathBuf, KeyFile, Server) {
    let (path, file) = key_file(tag);
    let keys = path.to_str().unwrap().to_owned();
    let server = Server::start(
        tag,
        pg,
        &[
            ("TAPKIT_SUN_KEYS_FILE", keys.as_str()),
            ("TAPKIT_RATE_LIMIT_PER_HOUR", "0"),
        ],
    );
    (path, file, server)
}

/// The key slots of a key journal's lines, in order.
fn journal_slots(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["slot"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The `?e=…&c=…` the chip writes on read `counter`, keyed under `version`.
fn sun(file: &KeyFile, version: u8, uid: [u8; 7], counter: u32) -> (String, String) {
    let master = file.version(version).unwrap();
    let picc = Picc { uid, counter };
    let e = encrypt_picc(&master.meta_key(), &picc, [counter as u8, 1, 2, 3, 4]);
    let c = sdm_mac(&master.card_key(FILE_SLOT, &uid), &picc, b"");
    (tapkit_core::hex::encode(&e), tapkit_core::hex::encode(&c))
}

/// One tap: whether it set the attribution cookie.
fn tap(server: &Server, path: &str) -> bool {
    let (status, head, _) = http_request(&server.addr, "GET", path, BROWSER, None);
    assert_eq!(status, 302, "{path}: {head}");
    head.to_ascii_lowercase()
        .contains("set-cookie: tapkit_ref=")
}

/// (channel, outcome, reason, counter) of every click, oldest first.
fn clicks(server: &Server, pg: Option<&str>) -> Vec<(String, String, String, String)> {
    let q = "SELECT channel, outcome, COALESCE(reason, ''), COALESCE(CAST(counter AS TEXT), '') FROM clicks ORDER BY id";
    let out = match pg {
        Some(url) => Command::new("psql")
            .args(["-X", "-A", "-t", "-F", "|", "-c", q, url])
            .output(),
        None => Command::new("sqlite3")
            .arg(server.dir.join("tapkit.db"))
            .arg(q)
            .output(),
    }
    .expect("the database shell runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

/// Registers a 424 DNA card (`uid`, upper-case hex) to `affiliate_id` under `version`.
fn register(
    server: &Server,
    affiliate_id: i64,
    uid: &str,
    version: u8,
) -> (u16, serde_json::Value) {
    server.api(
        "POST",
        "/api/admin/cards",
        Some(&format!(
            r#"{{"affiliate_id": {affiliate_id}, "uid": "{uid}", "key_version": {version}}}"#
        )),
    )
}

fn affiliate(server: &Server, name: &str) -> (i64, String) {
    let (status, a) = server.api(
        "POST",
        "/api/admin/affiliates",
        Some(&format!(r#"{{"name": "{name}", "kind": "business"}}"#)),
    );
    assert_eq!(status, 201, "{a}");
    (
        a["id"].as_i64().unwrap(),
        a["code"].as_str().unwrap().to_owned(),
    )
}

fn journey(tag: &str, pg: Option<&str>) {
    let (keys_path, mut file, server) = sun_server(tag, pg);
    let (gym, code) = affiliate(&server, "Iron Gym");
    let (other, other_code) = affiliate(&server, "Cafe");
    let uid = tapkit_core::hex::encode(&UID);

    // A key version the server does not hold is refused with what to do.
    let (status, e) = register(&server, gym, &uid, 9);
    assert_eq!(status, 409, "{e}");
    assert!(e.to_string().contains("TAPKIT_SUN_KEYS_FILE"), "{e}");
    let (status, card) = register(&server, gym, &uid, 1);
    assert_eq!(status, 201, "{card}");
    assert_eq!(card["key_version"], 1);

    let url = |counter: u32| {
        let (e, c) = sun(&file, 1, UID, counter);
        format!("/r/{code}?e={e}&c={c}")
    };
    // 1. A valid tap is attributed; the same URL again is a replay.
    assert!(tap(&server, &url(3)), "a valid SUN tap sets the cookie");
    assert!(!tap(&server, &url(3)), "a replayed URL earns nothing");
    // 2. One hex digit of the MAC changed: flagged; of the PICCData: flagged.
    let (e, c) = sun(&file, 1, UID, 5);
    let flip = |s: &str, i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    assert!(!tap(&server, &format!("/r/{code}?e={e}&c={}", flip(&c, 7))));
    // (A digit whose change no longer decrypts to the tag: one change in 256 still would,
    // and is then an unknown card, flagged too.)
    let meta = file.version(1).unwrap().meta_key();
    let bad_e = (0..32)
        .map(|i| flip(&e, i))
        .find(|x| decrypt_picc(&meta, x).is_err())
        .unwrap();
    assert!(!tap(&server, &format!("/r/{code}?e={bad_e}&c={c}")));
    // 3. Gaps are normal (the forged 5 was not accepted; 4 rises above 3).
    assert!(tap(&server, &url(4)));
    // 4. A lower counter is a replay.
    assert!(!tap(&server, &url(2)));
    // 5. The SUN parameters stripped: a plain link, never NFC.
    assert!(tap(&server, &format!("/r/{code}")));
    // 6. A plain mirror naming this card's UID was made up.
    assert!(!tap(&server, &format!("/r/{code}?m={uid}x000010")));
    // 7. Pasted onto another partner's code.
    assert!(!tap(&server, &format!("/r/{other_code}?e={e}&c={c}")));
    // 8. A card keyed but not registered.
    let stranger = [0x04, 9, 9, 9, 9, 9, 9];
    let (se, sc) = sun(&file, 1, stranger, 1);
    assert!(!tap(&server, &format!("/r/{code}?e={se}&c={sc}")));

    let got = clicks(&server, pg);
    let want = [
        ("nfc", "attributed", "", "3"),
        ("nfc", "flagged", "replayed_counter", "3"),
        ("nfc", "flagged", "bad_sun_mac", "5"),
        ("nfc", "flagged", "bad_sun_data", ""),
        ("nfc", "attributed", "", "4"),
        ("nfc", "flagged", "replayed_counter", "2"),
        ("link", "attributed", "", ""),
        ("nfc", "flagged", "card_needs_sun", "16"),
        ("nfc", "flagged", "card_of_another_affiliate", "5"),
        ("nfc", "flagged", "card_not_registered", ""),
    ];
    let got_ref: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    assert_eq!(got_ref, want);
    // Analytics counts the verified chip taps of the card.
    let (status, an) = server.api("GET", "/api/admin/analytics", None);
    assert_eq!(status, 200, "{an}");
    let row = an["cards"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["uid"] == uid.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (row["key_version"].as_i64(), row["verified"].as_i64()),
        (Some(1), Some(2)),
        "{an}"
    );

    // 9. Rotation: a second version in the file; the card re-keyed under it is a new
    // binding (its counter restarted), and both versions' cards verify.
    file.rotate([0x42; 16]);
    std::fs::write(&keys_path, file.render()).unwrap();
    let mut server = server;
    server.terminate();
    server.spawn();
    let (status, e) = register(&server, gym, &uid, 2);
    assert_eq!(status, 409, "re-keyed while still bound: {e}");
    assert!(e.to_string().contains("retire"), "{e}");
    let card_id = card["id"].as_i64().unwrap();
    let (status, _) = server.api("POST", &format!("/api/admin/cards/{card_id}/retire"), None);
    assert_eq!(status, 200);
    let (status, _) = register(&server, gym, &uid, 2);
    assert_eq!(status, 201);
    let old = [0x04, 1, 1, 1, 1, 1, 1];
    let (status, _) = register(&server, other, &tapkit_core::hex::encode(&old), 1);
    assert_eq!(status, 201);
    let (e2, c2) = sun(&file, 2, UID, 1);
    assert!(
        tap(&server, &format!("/r/{code}?e={e2}&c={c2}")),
        "new version, counter restarted"
    );
    let (e1, c1) = sun(&file, 1, UID, 9);
    assert!(
        !tap(&server, &format!("/r/{code}?e={e1}&c={c1}")),
        "the old keys of a re-keyed card"
    );
    let (eo, co) = sun(&file, 1, old, 1);
    assert!(
        tap(&server, &format!("/r/{other_code}?e={eo}&c={co}")),
        "an old-version card"
    );

    // 10. Concurrent taps of one URL: exactly one is attributed.
    let (ec, cc) = sun(&file, 2, UID, 50);
    let path = format!("/r/{code}?e={ec}&c={cc}");
    let attributed: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..24).map(|_| s.spawn(|| tap(&server, &path))).collect();
        hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(attributed, 1, "24 concurrent taps of one SUN URL");
    let _ = std::fs::remove_dir_all(keys_path.parent().unwrap());
}

#[test]
fn sun_taps_verify_on_sqlite() {
    journey("sun-sqlite", None);
}

#[test]
fn sun_taps_verify_on_postgres() {
    let Some((url, base)) = postgres_database("sun") else {
        return;
    };
    journey("sun-pg", Some(&url));
    tapkit_e2e::drop_postgres_database(&url, &base);
}

/// Two server replicas on one PostgreSQL database, the same SUN URL tapped at both at
/// once: one attributed click, the rest replays.
#[test]
fn one_sun_url_at_two_replicas_is_attributed_once() {
    let Some((url, base)) = postgres_database("sun2") else {
        return;
    };
    let (keys_path, file) = key_file("sun-replicas");
    let keys = keys_path.to_str().unwrap().to_owned();
    let env = [
        ("TAPKIT_SUN_KEYS_FILE", keys.as_str()),
        ("TAPKIT_RATE_LIMIT_PER_HOUR", "0"),
    ];
    let a = Server::start("sun-replica-a", Some(&url), &env);
    let b = Server::start("sun-replica-b", Some(&url), &env);
    let (gym, code) = affiliate(&a, "Iron Gym");
    let (status, card) = register(&a, gym, &tapkit_core::hex::encode(&UID), 1);
    assert_eq!(status, 201, "{card}");
    for round in 1..=5u32 {
        let (e, c) = sun(&file, 1, UID, round * 10);
        let path = format!("/r/{code}?e={e}&c={c}");
        let attributed: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..16)
                .map(|i| {
                    let server = if i % 2 == 0 { &a } else { &b };
                    let path = &path;
                    s.spawn(move || tap(server, path))
                })
                .collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(attributed, 1, "round {round}: 16 taps at two replicas");
    }
    let replays = clicks(&a, Some(&url))
        .iter()
        .filter(|(_, o, r, _)| o == "flagged" && r == "replayed_counter")
        .count();
    assert_eq!(replays, 5 * 15);
    drop((a, b));
    tapkit_e2e::drop_postgres_database(&url, &base);
    let _ = std::fs::remove_dir_all(keys_path.parent().unwrap());
}

/// One tap of the card on the reader by the independent client (pyscard + ndeflib, the
/// phone's Type 4 read): the URL it read.
fn phone_read(reader: &str) -> String {
    independent_read(reader)["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn write_sun(reader: &str, keys: &str, journal: &str, url: &str) -> std::process::Output {
    provisioner(&[
        "write",
        "--reader",
        reader,
        "--json",
        "--wait",
        "5",
        "--sun",
        "--keys",
        keys,
        "--journal",
        journal,
        url,
    ])
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// The path of a card URL, for tapping the test server.
fn path_of(url: &str) -> &str {
    url.strip_prefix("https://book.example.com").unwrap()
}

/// Through real pcscd + vpcd: `provisioner write --sun` on a blank emulated NTAG 424 DNA;
/// the independent client reads it twice, the server accepts both taps, a changed digit
/// and a replayed URL are flagged; then `reset` gives the card back its factory keys.
#[test]
fn a_sun_card_written_through_pcscd_verifies_at_the_server() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let (keys_path, _, server) = sun_server("sunpcsc", None);
    let keys = keys_path.to_str().unwrap().to_owned();
    let journal = keys_path.with_file_name("journal.jsonl");
    let journal = journal.to_str().unwrap();
    let (gym, code) = affiliate(&server, "Iron Gym");
    let base = format!("https://book.example.com/r/{code}");
    let _card = SimCard::start(&env.reader0, env.port0, &["--tag", "ntag424"]);

    let o = write_sun(&env.reader0, &keys, journal, &base);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json_of(&o);
    assert_eq!(report["type"], "NTAG424DNA");
    assert_eq!(report["key_version"], 1);
    assert_eq!(report["keys_changed"], 5);
    let uid = report["uid"].as_str().unwrap().to_owned();
    // Every key change was journaled first, with its slot and versions and no key.
    assert_eq!(journal_slots(journal.as_ref()), vec![1, 2, 3, 4, 0]);
    let lines = std::fs::read_to_string(journal).unwrap();
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let fields: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "at_ms",
                "event",
                "from_version",
                "op",
                "slot",
                "to_version",
                "uid"
            ],
            "no key in the journal: {line}"
        );
        assert_eq!(v["uid"], uid.as_str());
    }

    let (status, card) = register(&server, gym, &uid, 1);
    assert_eq!(status, 201, "{card}");
    let first = phone_read(&env.reader0);
    let second = phone_read(&env.reader0);
    for u in [&first, &second] {
        assert!(u.starts_with(&format!("{base}?e=")), "{u}");
    }
    assert_ne!(first, second, "every tap is signed afresh");
    assert!(tap(&server, path_of(&first)), "the first tap is attributed");
    assert!(
        tap(&server, path_of(&second)),
        "the second tap is attributed"
    );
    assert!(!tap(&server, path_of(&second)), "a replayed URL is not");
    let third = phone_read(&env.reader0);
    let mut forged = third.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    assert!(!tap(&server, path_of(&String::from_utf8(forged).unwrap())));
    let got: Vec<(String, String)> = clicks(&server, None)
        .into_iter()
        .map(|(_, outcome, reason, _)| (outcome, reason))
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        got,
        vec![
            pair("attributed", ""),
            pair("attributed", ""),
            pair("flagged", "replayed_counter"),
            pair("flagged", "bad_sun_mac"),
        ]
    );

    // Writing it again verifies and writes nothing; reset returns it to the factory.
    let again = json_of(&write_sun(&env.reader0, &keys, journal, &base));
    assert_eq!(again["already_written"], true, "{again}");
    let o = provisioner(&[
        "reset",
        "--reader",
        &env.reader0,
        "--json",
        "--keys",
        &keys,
        "--journal",
        journal,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_of(&o)["keys_changed"], 5);
    let o = provisioner(&["read", "--reader", &env.reader0, "--json"]);
    let info = json_of(&o);
    assert_eq!(info["sun_keys"]["state"], "factory", "{info}");
    assert!(info["url"].is_null(), "{info}");
}

/// A card torn away during its third key change, through pcscd: the write fails with
/// "put it back", `read` shows the half-changed keys, and the same command again finishes
/// the card, whose taps then verify at the server.
#[test]
fn a_sun_card_torn_during_change_key_is_finished_on_the_next_placement() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let (keys_path, _, server) = sun_server("sunpcsctear", None);
    let keys = keys_path.to_str().unwrap().to_owned();
    let journal = keys_path.with_file_name("journal.jsonl");
    let journal = journal.to_str().unwrap();
    let (gym, code) = affiliate(&server, "Iron Gym");
    let base = format!("https://book.example.com/r/{code}");
    let _card = SimCard::start(
        &env.reader0,
        env.port0,
        &[
            "--tag",
            "ntag424",
            "--fault",
            "tear-at-change:3",
            "--reinsert-ms",
            "600",
        ],
    );
    let o = write_sun(&env.reader0, &keys, journal, &base);
    assert_eq!(
        o.status.code(),
        Some(5),
        "exit 5 = put the card back; {}",
        stderr(&o)
    );
    assert!(json_of(&o)["retry"] == true, "{}", stdout(&o));
    assert!(wait_card(
        &env.reader0,
        true,
        std::time::Duration::from_secs(10)
    ));
    let info = json_of(&provisioner(&["read", "--reader", &env.reader0, "--json"]));
    assert_eq!(info["sun_keys"]["state"], "partial", "{info}");

    let o = write_sun(&env.reader0, &keys, journal, &base);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json_of(&o);
    assert_eq!(report["resumed"], true, "{report}");
    // Slots 1 and 2 were changed by the first run (the tear hit slot 2's change after
    // the settings), so the second changes 3, 4 and 0.
    assert_eq!(report["keys_changed"], 3, "{report}");
    let uid = report["uid"].as_str().unwrap().to_owned();
    let (status, card) = register(&server, gym, &uid, 1);
    assert_eq!(status, 201, "{card}");
    assert!(tap(&server, path_of(&phone_read(&env.reader0))));
    let journal_lines = std::fs::read_to_string(journal).unwrap().lines().count();
    assert_eq!(
        journal_lines,
        2 + 3,
        "each change journaled once, the torn one included"
    );
}

/// The batch with `--sun` from the server's partner list: each NTAG 424 DNA is keyed,
/// verified, journaled with its key version and registered with it; the first card is
/// torn away during a ChangeKey and finished when put back; every key change is in the
/// key journal before it was sent; the taps of both cards verify at the server; and the
/// print shop's PDF is made from the same list.
#[test]
fn a_sun_batch_registers_each_card_with_its_key_version() {
    let (keys_path, file, server) = sun_server("sunbatch", None);
    let keys = keys_path.to_str().unwrap().to_owned();
    let (gym, gym_code) = affiliate(&server, "Iron Gym");
    let (cafe, _) = affiliate(&server, "Cafe");
    let journal = keys_path.with_file_name("batch.jsonl");
    let run = |args: &[&str]| {
        Command::new(tapkit_e2e::bin("provisioner"))
            .args(args)
            .env("TAPKIT_ADMIN_TOKEN", &server.token)
            .env("XDG_CONFIG_HOME", journal.parent().unwrap())
            .output()
            .unwrap()
    };
    let url = server.url();
    let o = run(&[
        "provision",
        "--server",
        &url,
        "--reader",
        "sim",
        "--sim-cards",
        "ntag424+tear-at-change:4,ntag424",
        "--sun",
        "--keys",
        &keys,
        "--journal",
        journal.to_str().unwrap(),
        "--non-interactive",
        "--json",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The torn card's line, then its finish; then the second card.
    let outcomes: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap(),
                l["server_registered"] == true,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("failed", false), ("written", true), ("written", true)],
        "{lines:?}"
    );
    assert!(
        lines[0]["detail"].as_str().unwrap().contains("no answer"),
        "{}",
        lines[0]
    );
    for l in &lines[1..] {
        assert_eq!(l["key_version"], 1, "{l}");
        assert_eq!(l["tag_type"], "NTAG 424 DNA", "{l}");
    }
    // Card 1: 1, 2, 3 (torn: made), then 4 and 0 after the put-back; card 2: all five.
    assert_eq!(
        journal_slots(&journal.with_file_name("batch.keys.jsonl")),
        [1, 2, 3, 4, 0, 1, 2, 3, 4, 0]
    );

    // The server holds both cards under key version 1, and their taps verify.
    let (status, cards) = server.api("GET", "/api/admin/cards", None);
    assert_eq!(status, 200, "{cards}");
    let bound: Vec<(i64, i64)> = cards["cards"]
        .as_array()
        .or(cards.as_array())
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["affiliate_id"].as_i64().unwrap(),
                c["key_version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        bound.contains(&(gym, 1)) && bound.contains(&(cafe, 1)),
        "{cards}"
    );
    let gym_uid = lines[1]["uid"].as_str().unwrap();
    let uid: [u8; 7] = tapkit_core::hex::decode(gym_uid)
        .unwrap()
        .try_into()
        .unwrap();
    // The card's counter is at 2 after the provisioner's two test taps.
    let (e, c) = sun(&file, 1, uid, 3);
    assert!(tap(&server, &format!("/r/{gym_code}?e={e}&c={c}")));

    // The print shop's files come from the same list.
    let pdf = keys_path.with_file_name("cards.pdf");
    let o = run(&[
        "print",
        "--server",
        &url,
        "--all",
        "--out",
        pdf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
}
