//! Helpers for Tapkit's end-to-end tests: finding the built binaries, the pcscd + vpcd
//! environment set up by `scripts/with-pcscd.sh`, and emulated cards served to it.
//!
//! Tests through real pcscd need `PCSC_READER0`/`VPCD_PORT0` (exported by the wrapper).
//! Without them a test is skipped with a note, unless `TAPKIT_REQUIRE_PCSC=1` (set by
//! `scripts/test.sh`), where a missing pcscd is a failure: CI never skips silently.

use std::ffi::CString;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The two vpcd slots of the virtual reader.
#[derive(Debug, Clone)]
pub struct PcscEnv {
    /// Reader name of slot 0, e.g. `Virtual PCD 00 00`.
    pub reader0: String,
    /// TCP port of slot 0.
    pub port0: u16,
    /// Reader name of slot 1.
    pub reader1: String,
    /// TCP port of slot 1.
    pub port1: u16,
}

static PCSC: Mutex<()> = Mutex::new(());

/// The pcscd environment plus a lock that keeps tests off each other's slots; `None`
/// (skip) only when pcscd is not required.
pub fn pcsc_env() -> Option<(PcscEnv, MutexGuard<'static, ()>)> {
    let var = |k: &str| std::env::var(k).ok();
    let env = (|| {
        Some(PcscEnv {
            reader0: var("PCSC_READER0")?,
            port0: var("VPCD_PORT0")?.parse().ok()?,
            reader1: var("PCSC_READER1")?,
            port1: var("VPCD_PORT1")?.parse().ok()?,
        })
    })();
    match env {
        Some(e) => Some((e, PCSC.lock().unwrap_or_else(|p| p.into_inner()))),
        None if var("TAPKIT_REQUIRE_PCSC").as_deref() == Some("1") => {
            panic!(
                "TAPKIT_REQUIRE_PCSC=1 but no pcscd environment: run under scripts/with-pcscd.sh"
            )
        }
        None => {
            eprintln!(
                "skipped: no pcscd + vpcd (run scripts/test.sh, or wrap in scripts/with-pcscd.sh)"
            );
            None
        }
    }
}

/// Path of a workspace binary built next to this test (`target/<profile>/NAME`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Runs `provisioner` with `args`.
pub fn provisioner(args: &[&str]) -> Output {
    Command::new(bin("provisioner"))
        .args(args)
        .output()
        .expect("provisioner runs")
}

/// Stdout of a run as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of a run as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Blocks (in SCardGetStatusChange) until `reader` has a card (`present`) or not.
/// Transient PC/SC errors are retried with a fresh context until the deadline; the last
/// one is returned when the state never came.
pub fn wait_card_state(reader: &str, present: bool, timeout: Duration) -> Result<(), String> {
    let name = CString::new(reader).expect("reader names have no NUL");
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::from("timed out");
    while std::time::Instant::now() < deadline {
        let ctx = match pcsc::Context::establish(pcsc::Scope::User) {
            Ok(c) => c,
            Err(e) => {
                last = format!("establishing a PC/SC context: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut rs = [pcsc::ReaderState::new(name.clone(), pcsc::State::UNAWARE)];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ctx.get_status_change(left, &mut rs) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Err(last),
                Err(e) => {
                    last = format!("SCardGetStatusChange: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
            let st = rs[0].event_state();
            last = format!("reader state {st:?}");
            if st.contains(pcsc::State::PRESENT) == present {
                return Ok(());
            }
            rs[0].sync_current_state();
        }
    }
    Err(last)
}

/// Like [`wait_card_state`], as a yes/no.
pub fn wait_card(reader: &str, present: bool, timeout: Duration) -> bool {
    wait_card_state(reader, present, timeout).is_ok()
}

/// A child process killed when dropped, so a failing test never leaves it running to
/// disturb the next test (a leaked batch would grab the next test's card).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `provisioner sim-card` process serving an emulated tag on a vpcd slot.
pub struct SimCard {
    child: Child,
    reader: String,
}

impl SimCard {
    /// Starts `provisioner sim-card` on `port` with extra `args` and waits until pcscd
    /// sees the card on `reader`.
    pub fn start(reader: &str, port: u16, args: &[&str]) -> Self {
        let log =
            std::env::temp_dir().join(format!("tapkit-simcard-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("a log file for sim-card");
        let child = Command::new(bin("provisioner"))
            .args(["-v", "sim-card", "--vpcd", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("sim-card starts");
        // Owned before any assertion, so a failed start still kills the process.
        let card = Self {
            child,
            reader: reader.to_owned(),
        };
        if let Err(last) = wait_card_state(reader, true, Duration::from_secs(20)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the emulated card never appeared on {reader} ({last}); sim-card said:\n{text}");
        }
        card
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Wait for pcscd to notice, so the next test starts with an empty slot.
        wait_card(&self.reader, false, Duration::from_secs(5));
    }
}

/// Reads the card with the independent client (pyscard + ndeflib), as JSON.
pub fn independent_read(reader: &str) -> serde_json::Value {
    let python = std::env::var("TAPKIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/pcsc_read_ndef.py");
    let out = Command::new(&python).arg(script).arg(reader).output().unwrap_or_else(|e| {
        panic!("cannot run {python} for the independent reader ({e}); scripts/test.sh sets TAPKIT_PYTHON to a venv with pyscard and ndeflib")
    });
    assert!(
        out.status.success(),
        "independent reader failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("independent reader prints JSON")
}
