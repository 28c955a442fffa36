//! Headless Chromium driven through chromedriver's WebDriver API, for the tests that
//! need a real browser (cookies as Chromium stores them, the console and portal pages,
//! the counter display, the whole tap-to-book loop).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`scripts/install-deps.sh browser`);
//! without them [`Driver::start`] returns `None` (skip, with a note), unless
//! `TAPKIT_REQUIRE_BROWSER=1` (set by scripts/test.sh), where that is a failure.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap fails the test that called it

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{KillOnDrop, eventually, free_port, http_request};

/// One browser at a time: two chromedrivers started together on this 2-core machine
/// race for ports and time out.
pub static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

static NEXT_PROFILE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A chromedriver process with one Chromium session (a fresh profile directory).
pub struct Driver {
    addr: String,
    session: String,
    _chromedriver: KillOnDrop,
    _profile: std::path::PathBuf,
}

impl Driver {
    /// A WebDriver command on this session: its `value`, asserting a 200 answer.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, _, text) = http_request(
            &self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            "",
            body.as_deref(),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    /// Starts chromedriver and a headless Chromium; `None` when they are not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Like [`Driver::start`], with extra Chromium arguments.
    pub fn start_with(extra_args: &[String]) -> Option<Self> {
        let have = std::path::Path::new("/usr/bin/chromium").exists()
            && std::path::Path::new("/usr/bin/chromedriver").exists();
        if !have {
            if std::env::var("TAPKIT_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!(
                    "TAPKIT_REQUIRE_BROWSER=1 but chromium/chromedriver are missing: scripts/install-deps.sh browser"
                );
            }
            eprintln!("skipped: no chromium + chromedriver (scripts/install-deps.sh browser)");
            return None;
        }
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = KillOnDrop(child);
        let addr = format!("127.0.0.1:{port}");
        let t = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = std::env::temp_dir().join(format!(
            "tapkit-chromium-{}-{}",
            std::process::id(),
            NEXT_PROFILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .chain(extra_args.iter().cloned())
        .collect();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        }}});
        let (status, _, text) =
            http_request(&addr, "POST", "/session", "", Some(&caps.to_string()));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200, "new session: {v}");
        Some(Self {
            addr,
            session: v["value"]["sessionId"].as_str().unwrap().to_owned(),
            _chromedriver: child,
            _profile: profile,
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http_request(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            "",
            None,
        );
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

impl Driver {
    /// Navigates to `url` and waits for the load.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The address the tab shows.
    pub fn current_url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_owned()
    }

    /// Runs `script` in the page and returns what it returns.
    pub fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Runs an asynchronous `script` (it calls `arguments[0]` with the result).
    pub fn js_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The WebDriver id of the element matching `css` (panics when there is none).
    pub fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    /// Clicks the element matching `css` (does not wait for a navigation).
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Clicks something that loads a new page and waits until the new page has loaded.
    pub fn click_to_load(&self, css: &str) {
        self.js("window.__tapkit_old_page = true; return true");
        self.click(css);
        assert!(
            eventually(Duration::from_secs(15), || {
                self.js("return !window.__tapkit_old_page && document.readyState === 'complete'")
                    == json!(true)
            }),
            "clicking {css} did not load a page"
        );
    }

    /// Clears the field matching `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        self.js("return document.body.innerText")
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Makes the page's viewport exactly `w`×`h` CSS pixels.
    pub fn viewport(&self, w: u64, h: u64) {
        let chrome = self.js("return [outerWidth - innerWidth, outerHeight - innerHeight]");
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": w + chrome[0].as_u64().unwrap(), "height": h + chrome[1].as_u64().unwrap() })),
        );
    }
}
