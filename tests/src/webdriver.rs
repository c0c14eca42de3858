//! A real browser for the dashboard tests: Debian's chromium, driven through
//! chromedriver's W3C WebDriver HTTP API.
//!
//! The protocol is a handful of JSON requests (open a session, go to a URL,
//! find an element, type, click, take a screenshot), so it is spoken here
//! directly with reqwest rather than through a client crate: one less
//! dependency, and the requests are visible in the test's own code.
//!
//! chromedriver runs as a child process on a free loopback port and is
//! killed on drop, like the other servers of [`crate`].

use crate::free_port;
use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key W3C WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the browser and its driver (packages `chromium`
/// and `chromium-driver`, which scripts/test installs).
pub fn chromium_paths() -> Option<(PathBuf, PathBuf)> {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let driver = PathBuf::from("/usr/bin/chromedriver");
    driver.exists().then_some((browser, driver))
}

/// A chromedriver process of the test's own.
pub struct Driver {
    child: Child,
    base: String,
    browser: PathBuf,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver for `browser` on a free port and waits (at most
    /// 20 s) until it reports ready.
    pub async fn start(browser: &Path, driver: &Path) -> anyhow::Result<Driver> {
        // reqwest builds a TLS config even for plain http, and rustls cannot
        // pick a crypto back end by itself when two are compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            browser: browser.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()?,
        };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await {
                if let Ok(v) = r.json_value().await {
                    if v["value"]["ready"] == json!(true) {
                        return Ok(d);
                    }
                }
            }
            if Instant::now() > until {
                bail!("chromedriver on port {port} did not become ready within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a headless browser window of `width`×`height` CSS pixels; with
    /// `phone`, Chrome emulates a touch phone of that size (device pixel
    /// ratio 2, mobile user agent, viewport meta honoured).
    pub async fn session(
        &self,
        width: u32,
        height: u32,
        phone: bool,
    ) -> anyhow::Result<Session<'_>> {
        let mut options = json!({
            "binary": self.browser,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                "--lang=zh-CN",
            ],
            // The people the dashboard is for read Chinese.
            "prefs": { "intl.accept_languages": "zh-CN,zh" },
        });
        if phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36",
            });
        }
        let v = self
            .call(
                reqwest::Method::POST,
                "/session",
                Some(json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": options,
                }}})),
            )
            .await
            .context("opening a browser session")?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId in {v}"))?
            .to_owned();
        Ok(Session {
            driver: self,
            path: format!("/session/{id}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        } else if method == reqwest::Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {path}"))?;
        let status = resp.status();
        let v = resp
            .json_value()
            .await
            .with_context(|| format!("WebDriver {method} {path}: reading the answer"))?;
        if !status.is_success() {
            bail!(
                "WebDriver {method} {path} answered {status}: {} {}",
                v["value"]["error"],
                v["value"]["message"]
            );
        }
        Ok(v["value"].clone())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait JsonValue {
    async fn json_value(self) -> anyhow::Result<Value>;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> anyhow::Result<Value> {
        let bytes = self.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// One browser window. Call [`Session::quit`] at the end; a session left
/// open dies with its chromedriver anyway.
pub struct Session<'d> {
    driver: &'d Driver,
    path: String,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.driver
            .call(method, &format!("{}{path}", self.path), body)
            .await
    }

    /// Loads `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("loading {url}"))?;
        Ok(())
    }

    /// The URL the browser shows now.
    pub async fn url(&self) -> anyhow::Result<String> {
        let v = self.call(reqwest::Method::GET, "/url", None).await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("URL is not a string: {v}"))
    }

    /// The first element matching the CSS `selector`; the error names it.
    pub async fn find(&self, selector: &str) -> anyhow::Result<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await
            .with_context(|| format!("finding {selector:?} on the page"))?;
        v[ELEMENT]
            .as_str()
            .map(|s| Element(s.to_owned()))
            .ok_or_else(|| anyhow!("no element reference for {selector:?} in {v}"))
    }

    /// Types `text` into an input or textarea.
    pub async fn type_into(&self, e: &Element, text: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// Clicks an element (a button submits its form; the call returns once
    /// the next page has loaded).
    pub async fn click(&self, e: &Element) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            None,
        )
        .await?;
        Ok(())
    }

    /// Clicks an element that leads to another page (a link, a form's
    /// button) and waits, at most 10 s, until the next page has loaded.
    /// WebDriver's click may return before a form post's redirect lands, so
    /// the old page is marked first and the new one is the page without it.
    pub async fn click_and_load(&self, e: &Element) -> anyhow::Result<()> {
        self.execute("window.__gridwatchOld = true;").await?;
        self.click(e).await?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            // A script may fail while the page is being swapped: try again.
            let loaded = self
                .execute("return !window.__gridwatchOld && document.readyState === 'complete';")
                .await
                .map(|v| v == json!(true))
                .unwrap_or(false);
            if loaded {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("the page did not change within 10 s of the click");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The rendered text of an element.
    pub async fn text(&self, e: &Element) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// A PNG of the whole page, below the fold too (Chrome's DevTools
    /// `Page.captureScreenshot` over chromedriver's `goog/cdp/execute`).
    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (size["width"].as_f64(), size["height"].as_f64());
        let (Some(w), Some(h)) = (w, h) else {
            bail!("no cssContentSize in Page.getLayoutMetrics: {metrics}");
        };
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 },
                }),
            )
            .await?;
        let b64 = shot["data"]
            .as_str()
            .ok_or_else(|| anyhow!("no data in Page.captureScreenshot's answer"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
        .with_context(|| format!("DevTools {cmd}"))
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) -> anyhow::Result<()> {
        self.driver
            .call(reqwest::Method::DELETE, &self.path, None)
            .await?;
        Ok(())
    }
}
