//! The README's first command, `scripts/demo.sh`, run as a user would (with the binaries
//! this test run already built, `DEMO_BIN_DIR`, instead of a release build): it must get
//! through every step, leave the server running, and print a console URL and a sign-in
//! link that work.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use tapkit_e2e::{KillOnDrop, bin, free_port, http_request};

/// The script's process group (the script and its server); stopped when dropped, so a
/// failed assertion does not leave the demo's server running.
struct Group(u32);

impl Group {
    fn stop(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0)])
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn the_guided_demo_ends_with_a_running_server_and_a_working_sign_in_link() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tapkit-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addr = format!("127.0.0.1:{}", free_port());
    let bin_dir = bin("tapkit-server").parent().unwrap().to_path_buf();
    let t = Instant::now();
    // Its own process group, so the whole script (and its server) can be stopped.
    let mut child = Command::new("setsid")
        .arg(repo.join("scripts/demo.sh"))
        .env("DEMO_DIR", &dir)
        .env("DEMO_BIN_DIR", &bin_dir)
        .env("TAPKIT_LISTEN", &addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let group = Group(child.id());
    let _script = KillOnDrop(child);
    // A demo that hangs is stopped (and so fails) instead of blocking the suite.
    let watchdog = group.0;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(300));
        Group(watchdog).stop();
    });
    let stop = || group.stop();
    let mut text = String::new();
    for line in out.lines() {
        let line = line.unwrap();
        text += &line;
        text.push('\n');
        if line.starts_with("Ctrl-C stops it") {
            break;
        }
    }
    let elapsed = t.elapsed();
    let must = [
        "Done: 3 written, 0 skipped, 0 failed",
        "3 cards on",
        "no cookie: this visit earns nothing",
        "→ pending",
        "→ earned",
        "Iron Gym is owed 25.00 USD",
        &format!("admin console:              http://{addr}/admin"),
    ];
    for m in must {
        if !text.contains(m) {
            stop();
            panic!("the demo did not say {m:?}:\n{text}");
        }
    }
    assert_eq!(text.matches("→ 302 Found").count(), 5, "{text}");
    assert_eq!(
        text.matches("cookie tapkit_ref_js=v1.").count(),
        4,
        "{text}"
    );
    assert!(dir.join("cards.pdf").exists() && dir.join("qr").is_dir());
    // The server is still up, and the printed one-time link opens its sign-in page.
    let link = text
        .lines()
        .find_map(|l| l.split_once("sign in as admin@demo.example:"))
        .map(|(_, url)| url.trim().to_owned())
        .unwrap_or_else(|| panic!("no sign-in link:\n{text}"));
    let path = link.strip_prefix(&format!("http://{addr}")).unwrap();
    let (status, _, body) = http_request(&addr, "GET", path, "", None);
    stop();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Sign in as"), "{body}");
    // Its speed is measured, not asserted here (BENCHMARKS.md).
    eprintln!("the demo took {elapsed:?} (binaries prebuilt)");
    std::fs::remove_dir_all(&dir).unwrap();
}
