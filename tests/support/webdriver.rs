#![allow(dead_code)]
//! A small W3C WebDriver client for browser tests: it starts `chromedriver`, opens a headless
//! Chromium session with a fresh profile and a download folder, and offers the few commands
//! the tests use (navigate, find, click, type, read, cookies, screenshot). It speaks the protocol over
//! reqwest, so the tests need no browser-automation crate.
//!
//! Include it with `#[path = "support/webdriver.rs"] mod webdriver;`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts `chromedriver` (the path given) and a headless Chromium (`chromium`), with
    /// downloads going to `downloads`.
    pub async fn start(chromedriver: &str, chromium: &str, downloads: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver `{chromedriver}`: {e}"));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(status) = r.json::<Value>().await
                && status["value"]["ready"] == true
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready on port {port}");
        let profile = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(downloads).unwrap();
        let downloads = downloads.canonicalize().unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                    "prefs": {
                        "download.default_directory": downloads.display().to_string(),
                        "download.prompt_for_download": false,
                    },
                },
            }},
        });
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        let browser = Browser {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            downloads,
            _profile: profile,
        };
        // A click that submits a form may return before the next page is there: finding an
        // element waits up to 10 s for it to appear.
        browser
            .command("POST", "/timeouts", json!({ "implicit": 10_000 }))
            .await;
        // Headless Chromium saves downloads only when told where (a Chrome DevTools command).
        browser
            .command(
                "POST",
                "/goog/cdp/execute",
                json!({
                    "cmd": "Browser.setDownloadBehavior",
                    "params": { "behavior": "allow", "downloadPath": browser.downloads.display().to_string() },
                }),
            )
            .await;
        browser
    }

    /// The text of the first element `css` matches now, if there is one and it is still on
    /// the page when read (a page that is loading replaces its elements).
    #[allow(
        dead_code,
        reason = "not every test that loads this module waits for a page"
    )]
    pub async fn text_now(&self, css: &str) -> Option<String> {
        let found = self
            .try_command(
                "POST",
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        let id = found
            .as_array()?
            .first()?
            .as_object()?
            .values()
            .next()?
            .as_str()?
            .to_string();
        let text = self
            .try_command("GET", &format!("/element/{id}/text"), Value::Null)
            .await?;
        text.as_str().map(str::to_string)
    }

    /// Sends a command; `None` when the driver reports an error.
    async fn try_command(&self, method: &str, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let answer: Value = request.send().await.ok()?.json().await.ok()?;
        if answer["value"]["error"].is_string() {
            return None;
        }
        Some(answer["value"].clone())
    }

    /// Sends a command; panics with the driver's answer when it reports an error.
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {method} {path} failed: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url })).await;
    }

    /// The value of the current page's cookie `name` (HTTP-only ones included), if it has one.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.command("GET", "/cookie", Value::Null).await;
        cookies
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str())
            .map(str::to_string)
    }

    /// Sets cookie `name` for the current page's site, as a browser that kept a copy of it
    /// would send it.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        self.command(
            "POST",
            "/cookie",
            json!({ "cookie": { "name": name, "value": value, "path": "/", "httpOnly": true } }),
        )
        .await;
    }

    pub async fn url(&self) -> String {
        self.command("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the address contains `part` (after a click that navigates), and returns it.
    pub async fn wait_for_url(&self, part: &str) -> String {
        for _ in 0..100 {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the address never contained `{part}`; it is {}",
            self.url().await
        );
    }

    pub async fn title(&self) -> String {
        self.command("GET", "/title", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The elements matching a CSS selector, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.command(
            "POST",
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_string())))
        .collect()
    }

    /// The one element matching a CSS selector; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches `{css}`"))
    }

    pub async fn click(&self, element: &Element) {
        self.command("POST", &format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.command("POST", &format!("/element/{}/clear", element.0), json!({}))
            .await;
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// An attribute or property of the element (`disabled`, `value`), if it has one.
    #[allow(
        dead_code,
        reason = "not every test that loads this module reads attributes"
    )]
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self
            .command(
                "GET",
                &format!("/element/{}/attribute/{name}", element.0),
                Value::Null,
            )
            .await;
        match value {
            Value::String(text) => Some(text),
            Value::Bool(true) => Some("true".to_string()),
            _ => None,
        }
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        self.command("GET", &format!("/element/{}/text", element.0), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the window to `path` and returns its bytes.
    pub async fn screenshot(&self, path: &Path) -> Vec<u8> {
        use base64::Engine;
        let encoded = self.command("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }

    /// Waits until a file whose name ends in `suffix` has finished downloading, and returns
    /// its path.
    pub async fn downloaded(&self, suffix: &str, timeout: Duration) -> PathBuf {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Chromium first reserves the file's name with an empty file, writes the download
            // beside it as `*.crdownload`, then renames it over the empty one: a download is
            // complete when the file has content and no `.crdownload` is left.
            let files: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            let in_progress = files
                .iter()
                .any(|p| p.to_string_lossy().ends_with(".crdownload"));
            let found = files.into_iter().find(|p| {
                p.to_string_lossy().ends_with(suffix)
                    && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
            });
            if let Some(path) = found
                && !in_progress
            {
                return path;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no `*{suffix}` file was downloaded into {:?}",
                    self.downloads
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session and chromedriver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
