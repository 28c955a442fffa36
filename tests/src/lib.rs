//! Helpers for Tapkit's end-to-end tests: finding the built binaries, the pcscd + vpcd
//! environment set up by `scripts/with-pcscd.sh`, and emulated cards served to it.
//!
//! Tests through real pcscd need `PCSC_READER0`/`VPCD_PORT0` (exported by the wrapper).
//! Without them a test is skipped with a note, unless `TAPKIT_REQUIRE_PCSC=1` (set by
//! `scripts/test.sh`), where a missing pcscd is a failure: CI never skips silently.

pub mod browser;

use std::ffi::CString;
use std::path::{Path, PathBuf};
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
        // Seen a few times in long runs: sim-card is connected to vpcd but pcscd keeps
        // reporting an empty slot (root cause not found; vpcd accepts one connection at a
        // time and may still be holding the previous card's). The card has not been
        // touched yet, so starting it again is safe; up to three tries, logs kept.
        let mut logs = String::new();
        for attempt in 1..=3 {
            let log = std::env::temp_dir().join(format!(
                "tapkit-simcard-{}-{port}-{attempt}.log",
                std::process::id()
            ));
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
            match wait_card_state(reader, true, Duration::from_secs(10)) {
                Ok(()) => return card,
                Err(last) => {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    logs += &format!("attempt {attempt} ({last}):\n{text}\n");
                    eprintln!(
                        "sim-card attempt {attempt}: the card did not appear on {reader}; retrying"
                    );
                    drop(card);
                }
            }
        }
        panic!("the emulated card never appeared on {reader}; sim-card said:\n{logs}");
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

/// A `tapkit-server serve` process on a free loopback port, with its own data directory
/// and an admin token; killed when dropped.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// An admin API token.
    pub token: String,
    /// Its data directory (SQLite file, secret).
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<KillOnDrop>,
    log: PathBuf,
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server on SQLite in a fresh directory named after `tag`, or on
    /// `database_url` when given, with extra `TAPKIT_*` settings.
    pub fn start(tag: &str, database_url: Option<&str>, extra_env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("tapkit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a data directory");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = vec![
            (
                "TAPKIT_DATABASE_URL".to_owned(),
                database_url.map_or_else(
                    || format!("sqlite://{}", dir.join("tapkit.db").display()),
                    str::to_owned,
                ),
            ),
            ("TAPKIT_LISTEN".to_owned(), addr.clone()),
            ("TAPKIT_DATA_DIR".to_owned(), dir.display().to_string()),
            // Sign-in links point at this server.
            ("TAPKIT_PUBLIC_URL".to_owned(), format!("http://{addr}")),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let out = Command::new(bin("tapkit-server"))
            .args(["token", "create", "--name", "e2e"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("tapkit-server runs");
        assert!(out.status.success(), "token create: {}", stderr(&out));
        let token = stdout(&out).trim().to_owned();
        let log = dir.join("server.log");
        let mut s = Self {
            addr,
            token,
            dir,
            env,
            child: None,
            log,
        };
        s.spawn_on_port(true);
        s
    }

    /// Sets (or replaces) an environment variable for the next [`Server::spawn`] and
    /// [`Server::command`], e.g. a shifted clock.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// (Re)starts the process on the same port, database and secret.
    pub fn spawn(&mut self) {
        self.spawn_on_port(false);
    }

    /// Starts `serve` and waits for *its* "serving" log line (a connect alone could reach
    /// another test's server that took the port). With `may_move`, a port taken in the
    /// meantime (free_port releases it before the server binds) is replaced by another.
    fn spawn_on_port(&mut self, may_move: bool) {
        for _attempt in 0..3 {
            let serving = |log: &std::path::Path| {
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .matches(" serving")
                    .count()
            };
            let before = serving(&self.log);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("a server log file");
            let child = Command::new(bin("tapkit-server"))
                .arg("serve")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("tapkit-server serve starts");
            let mut child = KillOnDrop(child);
            let mut exited = false;
            for _ in 0..200 {
                if serving(&self.log) > before && std::net::TcpStream::connect(&self.addr).is_ok() {
                    self.child = Some(child);
                    return;
                }
                if matches!(child.0.try_wait(), Ok(Some(_))) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if exited && may_move && text.contains("Address already in use") {
                self.addr = format!("127.0.0.1:{}", free_port());
                let addr = self.addr.clone();
                self.set_env("TAPKIT_LISTEN", &addr);
                // The default public URL names the port; a test's own one is kept.
                let public = self
                    .env
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "TAPKIT_PUBLIC_URL")
                    .map(|(_, v)| v.clone());
                if public.is_some_and(|v| v.starts_with("http://127.0.0.1:")) {
                    self.set_env("TAPKIT_PUBLIC_URL", &format!("http://{addr}"));
                }
                continue;
            }
            panic!(
                "the server did not start serving on {} within 10 s; its log:\n{text}",
                self.addr
            );
        }
        panic!("three free ports were taken before the server could bind them");
    }

    /// SIGKILLs the process (a crash: nothing is flushed on the way out).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.0.kill();
            let _ = c.0.wait();
        }
    }

    /// Runs another `tapkit-server` subcommand with this server's settings.
    pub fn command(&self, args: &[&str]) -> Output {
        Command::new(bin("tapkit-server"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("tapkit-server runs")
    }

    /// Runs another `tapkit-server` subcommand with `input` on its standard input.
    pub fn command_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(bin("tapkit-server"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tapkit-server runs");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(input.as_bytes()).expect("stdin");
        }
        child.wait_with_output().expect("tapkit-server finishes")
    }

    /// SIGTERM (a graceful stop) and the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.0.id().to_string()])
            .status();
        c.0.wait().ok()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An admin API call: returns the status and the JSON body (`Null` when empty).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let auth = format!("Authorization: Bearer {}\r\n", self.token);
        let (status, _, text) = http_request(&self.addr, method, path, &auth, body);
        let json = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, raw header block, body).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    // Read the head, then Content-Length bytes (some servers, chromedriver among them,
    // keep the connection open despite `Connection: close`), else to the end.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut body_len: Option<(usize, usize)> = None; // (head end, content length)
    loop {
        if let Some((head_end, len)) = body_len
            && raw.len() >= head_end + len
        {
            break;
        }
        let n = s.read(&mut buf).expect("receive");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if body_len.is_none()
            && let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            if let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
            {
                body_len = Some((i + 4, len));
            }
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), rest.to_owned())
}

/// A TCP proxy that forwards the first `allow` connections to `target` and then drops
/// every new one at once, like a server that went away mid-batch.
pub struct FlakyProxy {
    /// `127.0.0.1:PORT` to connect to.
    pub addr: String,
    /// Connections forwarded so far.
    pub forwarded: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyProxy {
    /// Starts the proxy (a background thread per connection).
    pub fn start(target: &str, allow: usize) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = forwarded.clone();
        let target = target.to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if count.load(Ordering::SeqCst) >= allow {
                    drop(client);
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(client, upstream);
                pipe(u2, c2);
            }
        });
        Self { addr, forwarded }
    }
}

/// A `display-kiosk run` process, its page on `addr`, stderr kept in a log file.
pub struct Kiosk {
    /// `127.0.0.1:PORT` of its page.
    pub addr: String,
    /// Its state directory.
    pub state_dir: PathBuf,
    _child: KillOnDrop,
    log: PathBuf,
}

/// A server config whose kiosks beat every 5 s and go offline after 10 s of silence
/// (the production defaults are 45 s and 150 s), in `dir`.
pub fn kiosk_server_config(dir: &std::path::Path, booking_url: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("a config directory");
    let path = dir.join("tapkit.toml");
    std::fs::write(
        &path,
        format!(
            "[program]\nname = \"Shine Auto Detailing\"\ndomain = \"book.example.com\"\nbooking_url = \"{booking_url}\"\n\n[program.kiosk]\nheartbeat_secs = 5\noffline_after_secs = 10\n"
        ),
    )
    .expect("the config file");
    path
}

impl Kiosk {
    /// `display-kiosk enroll` for a new kiosk of `affiliate_id` on `server`; the state
    /// directory is returned.
    pub fn enroll(server: &Server, affiliate_id: i64, tag: &str) -> PathBuf {
        let (status, k) = server.api(
            "POST",
            "/api/admin/kiosks",
            Some(&serde_json::json!({ "affiliate_id": affiliate_id }).to_string()),
        );
        assert_eq!(status, 201, "{k}");
        let state =
            std::env::temp_dir().join(format!("tapkit-kioskstate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let out = Command::new(bin("display-kiosk"))
            .args(["enroll", "--server", &server.url(), "--code"])
            .arg(k["enrollment_code"].as_str().expect("an enrolment code"))
            .arg("--state-dir")
            .arg(&state)
            .output()
            .expect("display-kiosk runs");
        assert!(out.status.success(), "enroll: {}", stderr(&out));
        state
    }

    /// Starts `display-kiosk run` on a free port with `args` added.
    pub fn run(state_dir: &std::path::Path, args: &[&str]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = state_dir.with_extension("log");
        let err = std::fs::File::create(&log).expect("a kiosk log");
        let child = Command::new(bin("display-kiosk"))
            .args(["run", "--listen", &addr, "--state-dir"])
            .arg(state_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("display-kiosk run starts");
        let k = Self {
            addr,
            state_dir: state_dir.to_path_buf(),
            _child: KillOnDrop(child),
            log,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(&k.addr).is_ok() {
                return k;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the kiosk did not serve on {}: {}", k.addr, k.log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path of its page: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = http_request(&self.addr, "GET", path, "", None);
        (status, body)
    }

    /// Its `/status` JSON.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").1).expect("status is JSON")
    }

    /// The URL in the QR of the frame at `w`×`h` (its `data-qr`).
    pub fn qr_url(&self, w: u32, h: u32) -> String {
        let (_, svg) = self.get(&format!("/frame.svg?w={w}&h={h}"));
        svg.split("data-qr=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .replace("&amp;", "&")
    }
}

/// Polls `f` every 200 ms until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

/// Decodes the QR codes in a PNG with zbarimg (zbar, an independent decoder).
pub fn zbar(png: &std::path::Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(png)
        .output()
        .expect("zbarimg runs (scripts/install-deps.sh print)");
    stdout(&out).lines().map(str::to_owned).collect()
}

/// The repository's root.
pub fn repo() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// Environment that makes a process's clock read `at` (RFC 3339) now, through
/// libfaketime (`scripts/install-deps.sh e2e`). The offset is relative, so every process
/// started with the same value shares one clock.
pub fn clock_at(at: &str) -> Vec<(String, String)> {
    let lib = std::fs::read_dir("/usr/lib")
        .expect("/usr/lib")
        .filter_map(Result::ok)
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is installed (scripts/install-deps.sh e2e)");
    let target = tapkit_core::date::parse_rfc3339_ms(at).expect("an RFC 3339 time") / 1000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let now = i64::try_from(now).expect("seconds fit in i64");
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), format!("{:+}", target - now)),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Waits up to 10 s for something to listen on `addr`.
pub fn wait_listening(addr: &str, what: &str) {
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
            addr
        )
        .is_ok()),
        "{what} did not listen on {addr}"
    );
}

/// A fresh PostgreSQL database, or `None` (skip) when PostgreSQL is not configured and
/// not required. Returns its URL and the admin URL it was created from.
pub fn postgres_database(name: &str) -> Option<(String, String)> {
    let Ok(base) = std::env::var("TAPKIT_TEST_PG_URL") else {
        assert!(
            std::env::var("TAPKIT_REQUIRE_PG").as_deref() != Ok("1"),
            "TAPKIT_REQUIRE_PG=1 but TAPKIT_TEST_PG_URL is not set (scripts/test.sh sets it)"
        );
        eprintln!("skipped: no TAPKIT_TEST_PG_URL (scripts/test.sh sets it)");
        return None;
    };
    let db = format!("tapkit_e2e_{name}_{}", std::process::id());
    let psql = |q: &str| {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", q, &base])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{q}: {}", stderr(&out));
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    let (prefix, _) = base.rsplit_once('/').expect("a database URL");
    Some((format!("{prefix}/{db}"), base))
}

/// Drops a database [`postgres_database`] created (its server stopped first).
pub fn drop_postgres_database(url: &str, base: &str) {
    let db = url.rsplit_once('/').map_or(url, |(_, db)| db);
    let _ = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {db}"),
            base,
        ])
        .output();
}

/// The sample booking application (`deploy/sample-site/booking_app.py`): the brand's
/// checkout and payment system, on its own clock.
pub struct BookingApp {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: PathBuf,
    tapkit: String,
    secret: String,
    child: Option<KillOnDrop>,
}

impl BookingApp {
    /// Starts it with its state in `dir`, sending events to the server at `tapkit`
    /// signed with `secret`, on the clock `clock` ([`clock_at`]; empty: the real one).
    pub fn start(
        dir: &std::path::Path,
        tapkit: &str,
        secret: &str,
        clock: &[(String, String)],
    ) -> Self {
        Self::start_at(
            &format!("127.0.0.1:{}", free_port()),
            dir,
            tapkit,
            secret,
            clock,
        )
    }

    /// [`BookingApp::start`] on `addr` (known before, e.g. for the server's config).
    pub fn start_at(
        addr: &str,
        dir: &std::path::Path,
        tapkit: &str,
        secret: &str,
        clock: &[(String, String)],
    ) -> Self {
        let mut app = Self {
            addr: addr.to_owned(),
            dir: dir.to_path_buf(),
            tapkit: tapkit.to_owned(),
            secret: secret.to_owned(),
            child: None,
        };
        app.restart(clock);
        app
    }

    /// Restarts it (same port and state) on another clock.
    pub fn restart(&mut self, clock: &[(String, String)]) {
        self.child = None;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("booking-app.log"))
            .expect("the booking app's log");
        let child = Command::new("python3")
            .arg(repo().join("deploy/sample-site/booking_app.py"))
            .env("BOOKING_APP_LISTEN", &self.addr)
            .env("TAPKIT_URL", format!("http://{}", self.tapkit))
            .env("TAPKIT_WEBHOOK_SECRET", &self.secret)
            .env("BOOKING_APP_STATE", self.dir.join("bookings.json"))
            .envs(clock.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs the booking app");
        self.child = Some(KillOnDrop(child));
        wait_listening(&self.addr, "the booking app");
    }

    /// A back-office call (`POST` or `GET` of `/staff/...`): its JSON answer.
    pub fn staff_call(&self, method: &str, path: &str) -> serde_json::Value {
        let (status, _, body) = http_request(&self.addr, method, path, "", None);
        assert_eq!(status, 200, "{method} {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    }

    /// The back office marks a booking serviced or refunded: Tapkit's answer.
    pub fn staff(&self, booking: &str, what: &str) -> serde_json::Value {
        self.staff_call("POST", &format!("/staff/bookings/{booking}/{what}"))["tapkit"].clone()
    }

    /// A booking as the app keeps it.
    pub fn booking(&self, booking: &str) -> serde_json::Value {
        self.staff_call("GET", &format!("/staff/bookings/{booking}"))
    }

    /// A form posted to the app (the customer's browser): status and body.
    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_escape(v)))
            .collect();
        // (The app reads any POST body to its forms as URL-encoded.)
        let (status, _, text) = http_request(&self.addr, "POST", path, "", Some(&body.join("&")));
        (status, text)
    }
}

fn form_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The database a test's server runs on.
pub enum Database {
    /// A SQLite file `tapkit.db` in the server's data directory.
    Sqlite,
    /// A PostgreSQL database at this URL.
    Postgres(String),
}

/// Rows of a query on the server's database (`dir`: its data directory), through the
/// database's own command-line client; columns separated by `|`.
pub fn sql(database: &Database, dir: &std::path::Path, query: &str) -> Vec<String> {
    let out = match database {
        Database::Sqlite => Command::new("sqlite3")
            .arg(dir.join("tapkit.db"))
            .arg(query)
            .output(),
        Database::Postgres(url) => Command::new("psql")
            .args(["-X", "-A", "-t", "-F", "|", "-c", query, url])
            .output(),
    }
    .expect("the database's client runs");
    assert!(out.status.success(), "{query}: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .expect("UTF-8 rows")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Python's SMTP server process, printing each message it receives to `out`.
pub fn smtp_server(out: &Path) -> (KillOnDrop, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-u",
            "-W",
            "ignore",
            "-m",
            "smtpd",
            "-n",
            "-c",
            "DebuggingServer",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(out).expect("the SMTP output file can be created"))
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs its SMTP server");
    let p = KillOnDrop(child);
    wait_listening(&format!("127.0.0.1:{port}"), "the SMTP server");
    (p, port)
}

/// The recipients of the messages the SMTP server received, in order.
pub fn mail_recipients(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("b'To: "))
        .map(|l| l.trim_end_matches('\'').to_owned())
        .collect()
}

/// The messages the SMTP server received, as text: each message's lines, with
/// quoted-printable soft breaks undone as a mail client does.
pub fn mail_text(out: &Path) -> String {
    let raw = std::fs::read_to_string(out).unwrap_or_default();
    let lines: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("b'").or_else(|| l.strip_prefix("b\"")))
        .map(|l| l.trim_end_matches(['\'', '"']))
        .collect();
    lines.join("\n").replace("=\n", "").replace("=3D", "=")
}

/// The booking site's page: shows what its JavaScript sees of the cookies.
pub const BOOKING_PAGE: &str = "<!doctype html><html lang=en><head><title>Book</title></head>\
<body><h1>Book a detail</h1><p id=seen></p>\
<script>document.getElementById('seen').textContent = document.cookie;</script></body></html>";

/// A stand-in for the brand's booking site on a free port: every path answers
/// [`BOOKING_PAGE`].
pub fn booking_site() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the booking site");
    let port = listener.local_addr().expect("a bound port").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BOOKING_PAGE}",
                BOOKING_PAGE.len()
            );
            let _ = std::io::Write::write_all(&mut s, resp.as_bytes());
        }
    });
    port
}
