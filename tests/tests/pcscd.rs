//! The production PC/SC path, for real: `provisioner` → pcsc crate → libpcsclite → pcscd →
//! vpcd → `provisioner sim-card` (the emulated ACR122U + NTAG). A second, independent
//! client (pyscard + ndeflib) checks what landed on the card.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use tapkit_e2e::{
    PcscEnv, SimCard, independent_read, pcsc_env, provisioner, stderr, stdout, wait_card,
};

const URL: &str = "https://book.example.com/r/IRONGYM-7K2M9Q";

/// The emulated readers: the ACR122U (PN532-wrapped direct transmit) and an
/// ACR1252U-class reader (raw direct transmit). The NTAG21x tests run on both.
const READERS: [&[&str]; 2] = [
    &["--reader-kind", "acr122u"],
    &["--reader-kind", "acr1252u"],
];

/// `sim-card` arguments: `args` on the reader `kind`.
fn on<'a>(kind: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(kind);
    v
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn write(env: &PcscEnv, extra: &[&str], url: &str) -> std::process::Output {
    let mut args = vec![
        "write",
        "--reader",
        env.reader0.as_str(),
        "--json",
        "--wait",
        "5",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    provisioner(&args)
}

#[test]
fn readers_lists_the_virtual_reader_and_its_card() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let o = provisioner(&["readers", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = json(&o);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&env.reader0.as_str()), "{names:?}");
    assert!(names.contains(&env.reader1.as_str()), "{names:?}");
    let _card = SimCard::start(&env.reader0, env.port0, &["--tag", "ntag213"]);
    let list = json(&provisioner(&["readers", "--json"]));
    let r0 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == env.reader0.as_str())
        .unwrap()
        .clone();
    assert_eq!(r0["card_present"], true);
    assert_eq!(r0["atr"], "3B8F8001804F0CA0000003060300030000000068");
}

#[test]
fn write_then_read_back_with_an_independent_client() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for (raw, kind) in READERS.iter().enumerate() {
        let _card = SimCard::start(&env.reader0, env.port0, &on(kind, &["--tag", "ntag215"]));
        let o = write(&env, &[], URL);
        assert!(o.status.success(), "{kind:?}: {}", stderr(&o));
        let report = json(&o);
        assert_eq!(report["type"], "NTAG215");
        assert_eq!(report["already_written"], false);

        let indep = independent_read(&env.reader0);
        assert_eq!(indep["url"], URL, "{indep}");
        assert_eq!(indep["uid"], report["uid"]);
        assert_eq!(indep["cc"], "E1103E00");

        let o = provisioner(&["read", "--reader", &env.reader0, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let info = json(&o);
        assert_eq!(info["type"], "NTAG215");
        assert_eq!(info["uid"], report["uid"]);
        assert_eq!(info["url"], URL);

        // Writing the same URL again only reads (a raw reader first declines the PN532
        // wrapper: one APDU more).
        let again = json(&write(&env, &[], URL));
        assert_eq!(again["already_written"], true);
        assert_eq!(again["apdus"], 3 + raw, "{kind:?}");
    }
}

#[test]
fn the_mirror_shows_uid_and_counter_to_a_second_client() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for kind in READERS {
        let _card = SimCard::start(&env.reader0, env.port0, &on(kind, &["--tag", "ntag216"]));
        let o = write(&env, &["--mirror"], URL);
        assert!(o.status.success(), "{}", stderr(&o));
        let uid = json(&o)["uid"].as_str().unwrap().to_owned();
        let first = independent_read(&env.reader0)["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let second = independent_read(&env.reader0)["url"]
            .as_str()
            .unwrap()
            .to_owned();
        for url in [&first, &second] {
            assert!(url.starts_with(&format!("{URL}?m={uid}x")), "{url}");
        }
        let count = |u: &str| u32::from_str_radix(&u[u.len() - 6..], 16).unwrap();
        assert!(
            count(&second) > count(&first),
            "{first} then {second}: each session powers the tag up and counts"
        );
    }
}

#[test]
fn a_card_torn_mid_write_gives_a_clear_error_and_a_retry_completes() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for kind in READERS {
        let _card = SimCard::start(
            &env.reader0,
            env.port0,
            &on(
                kind,
                &[
                    "--tag",
                    "ntag215",
                    "--fault",
                    "tear-at-write:4",
                    "--reinsert-ms",
                    "600",
                ],
            ),
        );
        let o = write(&env, &[], URL);
        assert_eq!(
            o.status.code(),
            Some(5),
            "exit 5 = put the card back and retry; {}",
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(err.contains("the card left the reader after 3 of"), "{err}");
        assert!(
            err.contains("put the same card back and run the command again"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one sentence, not a trace: {err}");

        // The emulator presents the same card again; wait for pcscd to see it go and come.
        wait_card(&env.reader0, false, Duration::from_secs(5));
        assert!(wait_card(&env.reader0, true, Duration::from_secs(5)));
        // Until the retry, the half-written card reads as empty, never as a wrong URL.
        assert_eq!(
            independent_read(&env.reader0)["url"],
            serde_json::Value::Null
        );
        let o = write(&env, &[], URL);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            json(&o)["pages_unchanged"],
            4,
            "pages that landed before the tear (the torn one too) are not written again"
        );
        assert_eq!(independent_read(&env.reader0)["url"], URL);
    }
}

#[test]
fn a_card_pulled_mid_write_is_reported_the_same_way() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for kind in READERS {
        let _card = SimCard::start(
            &env.reader0,
            env.port0,
            &on(
                kind,
                &[
                    "--tag",
                    "ntag213",
                    "--fault",
                    "pull-at-write:2",
                    "--reinsert-ms",
                    "600",
                ],
            ),
        );
        let o = write(&env, &[], URL);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("put the same card back"),
            "{}",
            stderr(&o)
        );
        wait_card(&env.reader0, false, Duration::from_secs(5));
        assert!(wait_card(&env.reader0, true, Duration::from_secs(5)));
        let o = write(&env, &[], URL);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(independent_read(&env.reader0)["url"], URL);
    }
}

#[test]
fn a_locked_tag_refuses_later_writes() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for kind in READERS {
        let _card = SimCard::start(&env.reader0, env.port0, &on(kind, &["--tag", "ntag215"]));
        assert!(write(&env, &["--mirror"], URL).status.success());
        let o = provisioner(&["lock", "--reader", &env.reader0]);
        assert_eq!(o.status.code(), Some(4));
        assert!(stderr(&o).contains("add --permanent"), "{}", stderr(&o));
        let o = provisioner(&["lock", "--reader", &env.reader0, "--permanent", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let info = json(&provisioner(&["read", "--reader", &env.reader0, "--json"]));
        assert_eq!(info["lock"], "read-only");
        assert_eq!(info["config_locked"], true);
        let o = write(
            &env,
            &["--overwrite"],
            "https://book.example.com/r/GLOWDAYS-BBPEMY",
        );
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("locked (read-only) and cannot be rewritten; use a new card"),
            "{}",
            stderr(&o)
        );
        assert!(
            independent_read(&env.reader0)["url"]
                .as_str()
                .unwrap()
                .starts_with(URL)
        );
    }
}

/// Password set and checked, and the permanent lock, through pcscd on both readers, each
/// with a tear injected: the password's last write (AUTH0) torn away, then the lock's
/// first. The card's memory is kept in an image file between the `sim-card` runs, so each
/// fault counts the writes of one command.
#[test]
fn a_password_and_a_lock_survive_a_tear_through_pcscd() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let (flag, pwd) = ("--password", "1A2B3C4D");
    for (i, kind) in READERS.iter().enumerate() {
        let img =
            std::env::temp_dir().join(format!("tapkit-pwdlock-{}-{i}.json", std::process::id()));
        let _ = std::fs::remove_file(&img);
        let image = img.to_str().unwrap();
        let card = |fault: &[&str]| {
            let mut args = vec!["--tag", "ntag215", "--image", image, "--reinsert-ms", "600"];
            args.extend_from_slice(fault);
            SimCard::start(&env.reader0, env.port0, &on(kind, &args))
        };
        let put_back = || {
            wait_card(&env.reader0, false, Duration::from_secs(5));
            assert!(wait_card(&env.reader0, true, Duration::from_secs(5)));
        };
        {
            let _card = card(&[]);
            assert!(write(&env, &[], URL).status.success());
        }
        {
            // PWD, PACK, then AUTH0: the third write is torn away (it lands).
            let _card = card(&["--fault", "tear-at-write:3"]);
            let o = write(&env, &["--set-password", flag, pwd], URL);
            assert_eq!(o.status.code(), Some(5), "{kind:?}: {}", stderr(&o));
            put_back();
            let o = write(&env, &["--set-password", flag, pwd], URL);
            assert!(o.status.success(), "{kind:?}: {}", stderr(&o));
            let info = json(&provisioner(&["read", "--reader", &env.reader0, "--json"]));
            assert_eq!(info["password_protected"], true, "{kind:?}: {info}");
            // Phones still read it; rewriting needs the password, and the right one.
            assert_eq!(independent_read(&env.reader0)["url"], URL);
            let other = "https://book.example.com/r/GLOWDAYS-BBPEMY";
            let o = write(&env, &["--overwrite"], other);
            assert_eq!(o.status.code(), Some(4), "{kind:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("password-protected"), "{}", stderr(&o));
            let o = write(&env, &["--overwrite", flag, "00000000"], other);
            assert_eq!(o.status.code(), Some(4), "{kind:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("rejected the password"),
                "{}",
                stderr(&o)
            );
            assert_eq!(independent_read(&env.reader0)["url"], URL);
        }
        {
            // The lock's first write torn away, then the lock finished.
            let _card = card(&["--fault", "tear-at-write:1"]);
            let lock = || {
                provisioner(&[
                    "lock",
                    "--reader",
                    &env.reader0,
                    "--permanent",
                    "--json",
                    flag,
                    pwd,
                ])
            };
            let o = lock();
            assert_eq!(
                o.status.code(),
                Some(5),
                "{kind:?}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            put_back();
            let o = lock();
            assert!(o.status.success(), "{kind:?}: {}", stderr(&o));
            let info = json(&provisioner(&["read", "--reader", &env.reader0, "--json"]));
            assert_eq!(info["lock"], "read-only", "{kind:?}: {info}");
            assert_eq!(info["config_locked"], true, "{kind:?}: {info}");
            assert_eq!(independent_read(&env.reader0)["url"], URL);
        }
        let _ = std::fs::remove_file(&img);
    }
}

#[test]
fn wrong_tags_are_refused_through_pcscd() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    for (tag, needle) in [
        ("ntag424", "NTAG 424 DNA"),
        ("classic1k", "MIFARE Classic 1K"),
        ("ultralight-ev1", "Ultralight EV1"),
    ] {
        let _card = SimCard::start(&env.reader0, env.port0, &["--tag", tag]);
        let o = write(&env, &[], URL);
        assert_eq!(o.status.code(), Some(4), "{tag}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{tag}: {}", stderr(&o));
    }
}

#[test]
fn the_image_keeps_the_card_between_sim_card_runs() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tapkit-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("card.json");
    let image_s = image.to_str().unwrap();
    let uid = {
        let _card = SimCard::start(
            &env.reader0,
            env.port0,
            &["--tag", "ntag213", "--image", image_s],
        );
        let o = write(&env, &[], URL);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)["uid"].as_str().unwrap().to_owned()
    };
    // Presented again, this time on the ACR1252U-class reader.
    let _card = SimCard::start(
        &env.reader0,
        env.port0,
        &on(READERS[1], &["--tag", "ntag213", "--image", image_s]),
    );
    let info = json(&provisioner(&["read", "--reader", &env.reader0, "--json"]));
    assert_eq!(info["url"], URL);
    assert_eq!(info["uid"], uid);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_second_slot_works_independently() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let _a = SimCard::start(&env.reader0, env.port0, &["--tag", "ntag215"]);
    let _b = SimCard::start(
        &env.reader1,
        env.port1,
        &on(READERS[1], &["--tag", "ntag213"]),
    );
    let o = provisioner(&["write", "--reader", &env.reader1, "--json", URL]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["type"], "NTAG213");
    assert_eq!(independent_read(&env.reader1)["url"], URL);
    assert_eq!(
        independent_read(&env.reader0)["url"],
        serde_json::Value::Null
    );
}

/// Plays the admin at the reader: for each partner the batch asks for, places a fresh
/// emulated card (with `faults` for the listed partner index), waits for the batch's
/// verdict, takes the card away. Returns the events seen, or stops after `kill_after`
/// card events by SIGKILL-ing the batch.
fn run_batch_at_reader(
    env: &PcscEnv,
    csv: &std::path::Path,
    journal: &std::path::Path,
    faulty: Option<(usize, &[&str])>,
    kill_after: Option<usize>,
) -> Vec<serde_json::Value> {
    let source = [
        "--csv",
        csv.to_str().unwrap(),
        "--domain",
        "book.example.com",
    ];
    run_batch_from(env, &source, &[], journal, faulty, kill_after)
}

/// Like [`run_batch_at_reader`] with any partner source and extra environment.
fn run_batch_from(
    env: &PcscEnv,
    source: &[&str],
    vars: &[(&str, &str)],
    journal: &std::path::Path,
    faulty: Option<(usize, &[&str])>,
    kill_after: Option<usize>,
) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(tapkit_e2e::bin("provisioner"))
        .arg("provision")
        .args(source)
        .args(["--reader", &env.reader0, "--journal"])
        .arg(journal)
        .envs(vars.iter().copied())
        .args(["--non-interactive", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = tapkit_e2e::KillOnDrop(child);
    let mut events = Vec::new();
    let mut card: Option<SimCard> = None;
    let mut partner_index = 0;
    let mut cards_done = 0;
    for line in out.lines() {
        let ev: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match ev["event"].as_str().unwrap_or("") {
            "next" => {
                // The partners' cards alternate between the two readers' dialects.
                let mut args = on(
                    READERS[partner_index % 2],
                    &["--tag", "ntag215", "--reinsert-ms", "700"],
                );
                if let Some((i, f)) = faulty
                    && i == partner_index
                {
                    args.extend_from_slice(f);
                }
                card = Some(SimCard::start(&env.reader0, env.port0, &args));
                partner_index += 1;
            }
            "card" if ev["outcome"] == "written" || ev["outcome"] == "already-provisioned" => {
                cards_done += 1;
                if kill_after == Some(cards_done) {
                    child.0.kill().unwrap();
                    events.push(ev);
                    break;
                }
                drop(card.take()); // take the card away; the batch waits for that
            }
            _ => {}
        }
        events.push(ev);
    }
    let _ = child.0.wait();
    drop(card);
    events
}

#[test]
fn a_batch_at_the_reader_survives_a_pulled_card_and_a_crash() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tapkit-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("partners.csv");
    let journal = dir.join("journal.jsonl");
    let names = [
        "Iron Gym",
        "Café Zürich & Co.",
        "Łódź Książki",
        "Glow Day Spa",
    ];
    let mut text = String::from("name,code\n");
    for (i, n) in names.iter().enumerate() {
        text += &format!(
            "\"{n}\",{}\n",
            tapkit_core::code::ReferralCode::generate(n, 77 + i as u32)
        );
    }
    std::fs::write(&csv, text).unwrap();

    // First run: the second card is pulled mid-write and put back; the batch is killed
    // (SIGKILL) right after its second card.
    let ev = run_batch_at_reader(
        &env,
        &csv,
        &journal,
        Some((1, &["--fault", "pull-at-write:3"])),
        Some(2),
    );
    let prompts: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "prompt")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("Café Zürich & Co. left the reader mid-write")),
        "{prompts:?}"
    );

    // Second run with the same journal: resumes at the third partner.
    let ev = run_batch_at_reader(&env, &csv, &journal, None, None);
    let next: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "next")
        .map(|e| e["partner"].as_str().unwrap())
        .collect();
    assert_eq!(next, &names[2..]);
    let summary = ev.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(
        (summary["done"].as_u64(), summary["skipped"].as_u64()),
        (Some(2), Some(2))
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let written: Vec<&str> = lines
        .iter()
        .filter(|e| e["outcome"] == "written")
        .map(|e| e["partner"].as_str().unwrap())
        .collect();
    assert_eq!(written, names);
    let uids: std::collections::HashSet<&str> =
        lines.iter().filter_map(|e| e["uid"].as_str()).collect();
    assert_eq!(uids.len(), 4, "four different physical cards");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_while_waiting_for_a_card_stops_the_batch_cleanly() {
    use std::io::BufRead;
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tapkit-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("p.csv");
    std::fs::write(
        &csv,
        format!(
            "name,code\nIron Gym,{}\n",
            tapkit_core::code::ReferralCode::generate("Iron Gym", 5)
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(tapkit_e2e::bin("provisioner"))
        .args([
            "provision",
            "--csv",
            csv.to_str().unwrap(),
            "--domain",
            "book.example.com",
            "--reader",
            &env.reader0,
        ])
        .args([
            "--journal",
            dir.join("j.jsonl").to_str().unwrap(),
            "--non-interactive",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut child = tapkit_e2e::KillOnDrop(child);
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "next");
    // No card is coming: the batch blocks in SCardGetStatusChange until SIGINT cancels it.
    std::thread::sleep(Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let status = child.0.wait().unwrap();
    let summary = rest
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary after Ctrl-C");
    assert_eq!(summary["stopped"], true);
    assert_eq!(summary["remaining"], 1);
    assert!(status.success(), "a clean stop exits 0");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_batch_from_the_server_registers_cards_and_retries_after_an_outage() {
    let Some((env, _guard)) = pcsc_env() else {
        return;
    };
    let server = tapkit_e2e::Server::start("pcsc-server", None, &[]);
    let names = ["Iron Gym", "Glow Day Spa"];
    for n in names {
        let (status, a) = server.api(
            "POST",
            "/api/admin/affiliates",
            Some(&serde_json::json!({ "name": n, "kind": "business" }).to_string()),
        );
        assert_eq!(status, 201, "{a}");
    }
    let journal = server.dir.join("journal.jsonl");
    let cfg_home = server.dir.display().to_string();
    let vars = [
        ("TAPKIT_ADMIN_TOKEN", server.token.as_str()),
        ("XDG_CONFIG_HOME", cfg_home.as_str()),
    ];
    // Only the partner list gets through: both registrations meet a dead server.
    let proxy = tapkit_e2e::FlakyProxy::start(&server.addr, 1);
    let via_proxy = format!("http://{}", proxy.addr);
    let ev = run_batch_from(&env, &["--server", &via_proxy], &vars, &journal, None, None);
    let summary = ev.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(
        (
            summary["done"].as_u64(),
            summary["registration_pending"].as_u64()
        ),
        (Some(2), Some(2)),
        "{summary}"
    );
    let (_, cards) = server.api("GET", "/api/admin/cards", None);
    assert_eq!(cards.as_array().unwrap().len(), 0);

    // The server is back: the re-run registers both without asking for a card.
    let url = server.url();
    let ev = run_batch_from(&env, &["--server", &url], &vars, &journal, None, None);
    assert!(!ev.iter().any(|e| e["event"] == "next"), "{ev:?}");
    let summary = ev.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["registered_late"].as_u64(), Some(2), "{summary}");
    let (_, cards) = server.api("GET", "/api/admin/cards", None);
    let uids: std::collections::HashSet<&str> = cards
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uid"].as_str().unwrap())
        .collect();
    let journal_uids: std::collections::HashSet<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["outcome"] == "written")
        .map(|e| e["uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uids.len(), 2);
    assert!(uids.iter().all(|u| journal_uids.contains(*u)));
}
