//! `provisioner provision` on the simulator: clean batch, resume after a crash, duplicate
//! card, wrong tag, pulled card, a card already provisioned, dry run, bad CSV rows.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tapkit_core::code::ReferralCode;

const DOMAIN: &str = "book.example.com";
const NAMES: [&str; 5] = [
    "Iron Gym",
    "Café Zürich & Co.",
    "Łódź Książki",
    "Glow Day Spa",
    "Auto Haus Nord",
];

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("tapkit-prov-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(i: usize) -> ReferralCode {
    ReferralCode::generate(NAMES[i], 1000 + i as u32)
}

fn write_csv(path: &Path, extra: &str) {
    let mut s = String::from("name,code,kind\n");
    for (i, n) in NAMES.iter().enumerate() {
        s += &format!("\"{n}\",{},business\n", code(i));
    }
    s += extra;
    std::fs::write(path, s).unwrap();
}

fn provision(csv: &Path, journal: &Path, cards: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["provision", "--csv"])
        .arg(csv)
        .args(["--domain", DOMAIN, "--reader", "sim", "--journal"])
        .arg(journal)
        .args(["--non-interactive", "--json", "--sim-cards", cards])
        .args(extra)
        .output()
        .unwrap()
}

fn events(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn journal(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(ev: &[serde_json::Value]) -> serde_json::Value {
    ev.iter()
        .find(|e| e["event"] == "summary")
        .cloned()
        .expect("a summary event")
}

#[test]
fn a_clean_batch_writes_every_card_and_journals_it() {
    let d = Dir::new("clean");
    write_csv(&d.path("p.csv"), "");
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary(&events(&o));
    assert_eq!(
        (
            s["done"].as_u64(),
            s["skipped"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(5), Some(0), Some(0))
    );
    let j = journal(&d.path("j.jsonl"));
    assert_eq!(j.len(), 5);
    for (i, e) in j.iter().enumerate() {
        assert_eq!(e["partner"], NAMES[i]);
        assert_eq!(e["code"], code(i).as_str());
        assert_eq!(e["outcome"], "written");
        assert_eq!(e["verified"], true);
        assert_eq!(e["tag_type"], "NTAG215");
        assert_eq!(
            e["url"],
            format!("https://{DOMAIN}/r/{}?m=00000000000000x000000", code(i))
        );
        assert_eq!(e["uid"].as_str().unwrap().len(), 14);
    }
    // A second run with the same journal has nothing to do.
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[]);
    let s = summary(&events(&o));
    assert_eq!(
        (s["done"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(journal(&d.path("j.jsonl")).len(), 5, "nothing appended");
}

#[test]
fn a_crash_mid_batch_resumes_where_it_stopped() {
    let d = Dir::new("resume");
    write_csv(&d.path("p.csv"), "");
    assert!(
        provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[])
            .status
            .success()
    );
    // As if the process died while appending the third line.
    let text = std::fs::read_to_string(d.path("j.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let torn = format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..40]);
    std::fs::write(d.path("j.jsonl"), torn).unwrap();
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o);
    let s = summary(&ev);
    assert_eq!(
        (s["done"].as_u64(), s["skipped"].as_u64()),
        (Some(3), Some(2))
    );
    let next: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "next")
        .map(|e| e["partner"].as_str().unwrap())
        .collect();
    assert_eq!(next, &NAMES[2..]);
    let j = journal(&d.path("j.jsonl"));
    assert_eq!(j.iter().filter(|e| e["outcome"] == "written").count(), 5);
}

#[test]
fn duplicate_wrong_and_pulled_cards_are_handled() {
    let d = Dir::new("faults");
    write_csv(&d.path("p.csv"), "");
    // partner 0: fine; partner 1: pulled at write 3, put back; partner 2: an Ultralight
    // EV1 (refused), then an NTAG213; partner 3: partner 2's card again (refused, with
    // both names), then a fresh card; partner 4: a fresh NTAG216.
    let o = provision(
        &d.path("p.csv"),
        &d.path("j.jsonl"),
        "ntag215,ntag215+pull-at-write:3,ultralight-ev1,ntag213,again,ntag215,ntag216",
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o);
    let s = summary(&ev);
    assert_eq!(
        (
            s["done"].as_u64(),
            s["failed"].as_u64(),
            s["refused_cards"].as_u64()
        ),
        (Some(5), Some(0), Some(2))
    );
    let prompts: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "prompt")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("left the reader mid-write: put the same card back")),
        "{prompts:?}"
    );
    assert!(
        prompts.iter().any(|p| p.contains("MIFARE Ultralight EV1")),
        "{prompts:?}"
    );
    let dup = format!(
        "This card already belongs to {} ({}), not {}",
        NAMES[2],
        code(2),
        NAMES[3]
    );
    assert!(prompts.iter().any(|p| p.starts_with(&dup)), "{prompts:?}");
    let j = journal(&d.path("j.jsonl"));
    let outcomes: Vec<&str> = j.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "written", "failed", "written", "refused", "written", "refused", "written", "written"
        ]
    );
    assert_eq!(
        j[2]["partner"], NAMES[1],
        "the pulled card was finished for the same partner"
    );
    assert_eq!(j[4]["tag_type"], "NTAG213");
    assert_eq!(j[7]["tag_type"], "NTAG216");
}

#[test]
fn a_card_already_holding_the_partners_url_is_skipped() {
    let d = Dir::new("already");
    write_csv(&d.path("p.csv"), "");
    let img = d.path("card.json");
    let url = format!("https://{DOMAIN}/r/{}", code(0));
    let w = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["write", "--reader", "sim", "--mirror", "--sim-image"])
        .arg(&img)
        .arg(&url)
        .output()
        .unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let o = provision(
        &d.path("p.csv"),
        &d.path("j.jsonl"),
        &format!("image:{}", img.display()),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = journal(&d.path("j.jsonl"));
    assert_eq!(j[0]["outcome"], "already-provisioned");
    assert_eq!(j[0]["verified"], true);
    let s = summary(&events(&o));
    assert_eq!(
        (s["done"].as_u64(), s["skipped"].as_u64()),
        (Some(4), Some(1))
    );
}

#[test]
fn a_partner_is_given_up_on_after_too_many_bad_cards() {
    let d = Dir::new("giveup");
    write_csv(&d.path("p.csv"), "");
    let o = provision(
        &d.path("p.csv"),
        &d.path("j.jsonl"),
        "classic1k,ntag424",
        &["--max-attempts", "2"],
    );
    assert_eq!(o.status.code(), Some(1));
    let s = summary(&events(&o));
    assert_eq!(
        (s["done"].as_u64(), s["failed"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("run the same command again to retry them")
    );
    // The retry picks up just that partner.
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[]);
    let s = summary(&events(&o));
    assert_eq!(
        (s["done"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(4))
    );
}

#[test]
fn bad_rows_are_reported_with_line_numbers_and_the_rest_used() {
    let d = Dir::new("badrows");
    write_csv(&d.path("p.csv"), ",NOPE\nTypo Partner,IRONGYM-7K2M9X\n");
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "", &[]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 7: the name is empty"), "{err}");
    assert!(
        err.contains("line 8: the referral code \"IRONGYM-7K2M9X\" does not check out"),
        "{err}"
    );
    assert_eq!(summary(&events(&o))["done"], 5);
}

#[test]
fn dry_run_shows_each_url_and_where_it_fits() {
    let d = Dir::new("dry");
    write_csv(&d.path("p.csv"), "");
    let o = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["provision", "--dry-run", "--json", "--csv"])
        .arg(d.path("p.csv"))
        .args(["--domain", DOMAIN])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = events(&o);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["fits_with_mirror"], "NTAG213");
    assert!(!d.path("j.jsonl").exists(), "a dry run touches no journal");
    let long = "a".repeat(60);
    let o = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["provision", "--dry-run", "--csv"])
        .arg(d.path("p.csv"))
        .args(["--domain", &format!("{long}.{long}.example.com")])
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("fits NTAG215+ with mirror"),
        "a long domain no longer fits an NTAG213: {out}"
    );
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let d = Dir::new("args");
    write_csv(&d.path("p.csv"), "");
    let o = provision(&d.path("p.csv"), &d.path("j.jsonl"), "ntag999", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown tag type \"ntag999\""));
    let o = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["provision", "--csv"])
        .arg(d.path("p.csv"))
        .args([
            "--domain",
            "https://book.example.com",
            "--reader",
            "sim",
            "--non-interactive",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no https://"));
    std::fs::write(d.path("notajournal"), "hello\n").unwrap();
    let o = provision(&d.path("p.csv"), &d.path("notajournal"), "", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a journal entry"));
}
