//! A small W3C WebDriver client over reqwest, for driving headless Chromium through
//! chromedriver in the console's browser tests: sessions, navigation, elements, screenshots.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver answers an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A blocking HTTP client over reqwest's async one (the tests have no runtime of their own).
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An HTTP answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Http {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // No redirects followed: the tests look at where the server sends a browser.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Self { rt, client }
    }

    pub fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        self.rt.block_on(async {
            let mut r = self.client.request(method.clone(), url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            if let Some(b) = body {
                r = r.json(b);
            }
            let r = r.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await.map_err(|e| format!("{method} {url}: {e}"))?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Answer, String> {
        self.send(reqwest::Method::GET, url, None, headers)
    }
}

/// An element found on the current page.
#[derive(Debug, Clone)]
pub struct El(String);

/// One WebDriver session; deleted when dropped, so the browser goes even when a step fails.
pub struct Session {
    http: Http,
    /// `http://127.0.0.1:PORT/session/ID`
    root: String,
}

impl Session {
    /// A new session on the chromedriver at `driver` (`http://127.0.0.1:PORT`), running
    /// `chromium` headless in a window of `width`×`height`.
    pub fn new(driver: &str, chromium: &Path, width: u32, height: u32) -> Result<Self, String> {
        let http = Http::new();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-dev-shm-usage",
                        "--disable-gpu",
                        "--no-first-run",
                        "--disable-extensions",
                        "--hide-scrollbars",
                        format!("--window-size={width},{height}"),
                    ],
                },
            } }
        });
        let answer = http.send(
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(&capabilities),
            &[],
        )?;
        let value = unwrap_value(answer)?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {value}"))?;
        Ok(Self {
            root: format!("{driver}/session/{id}"),
            http,
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        // WebDriver wants a JSON body (even an empty object) on every POST.
        let body = match (&method, body) {
            (&reqwest::Method::POST, None) => Some(json!({})),
            (_, b) => b,
        };
        let answer = self
            .http
            .send(method, &format!("{}{path}", self.root), body.as_ref(), &[])?;
        unwrap_value(answer)
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub fn url(&self) -> String {
        self.get("/url")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn source(&self) -> String {
        self.get("/source")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn find(&self, css: &str) -> Result<El, String> {
        let v = self.post("/element", json!({ "using": "css selector", "value": css }))?;
        element(&v)
    }

    pub fn find_all(&self, css: &str) -> Vec<El> {
        self.post(
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(|e| element(e).ok()).collect())
        })
        .unwrap_or_default()
    }

    pub fn find_all_in(&self, el: &El, css: &str) -> Vec<El> {
        self.post(
            &format!("/element/{}/elements", el.0),
            json!({ "using": "css selector", "value": css }),
        )
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(|e| element(e).ok()).collect())
        })
        .unwrap_or_default()
    }

    /// The link whose text is exactly `text`.
    pub fn link(&self, text: &str) -> Result<El, String> {
        let v = self.post("/element", json!({ "using": "link text", "value": text }))?;
        element(&v)
    }

    /// Clicks `el` and waits until the page it was on has been replaced (a link followed, a
    /// form answered), so the next look is at the new page.
    pub fn click_and_wait(&self, el: &El) -> Result<(), String> {
        let html = self.find("html")?;
        self.post(&format!("/element/{}/click", el.0), json!({}))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.get(&format!("/element/{}/name", html.0)) {
                // The old page's root is gone: the click led to another page. Chromium says so
                // as a stale reference, or (on some versions, mid-navigation) as an inspector
                // error that the node no longer belongs to the document.
                Err(e)
                    if e.starts_with("stale element reference")
                        || e.contains("does not belong to the document") =>
                {
                    break;
                }
                Err(e) => return Err(e),
                Ok(_) if Instant::now() > deadline => {
                    return Err(format!(
                        "the click did not lead to another page within 30 s (still on {})",
                        self.url()
                    ));
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        while self.script("return document.readyState") != json!("complete") {
            if Instant::now() > deadline {
                return Err("the new page did not finish loading within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Clicks `el` where the click stays on the page (an option of a select).
    pub fn click(&self, el: &El) -> Result<(), String> {
        self.post(&format!("/element/{}/click", el.0), json!({}))
            .map(|_| ())
    }

    /// Replaces what `el` holds with `text`, typed as keys.
    pub fn type_into(&self, el: &El, text: &str) -> Result<(), String> {
        self.post(&format!("/element/{}/clear", el.0), json!({}))?;
        self.post(&format!("/element/{}/value", el.0), json!({ "text": text }))
            .map(|_| ())
    }

    /// The element's rendered text.
    pub fn text(&self, el: &El) -> String {
        self.get(&format!("/element/{}/text", el.0))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// An attribute as written in the markup.
    pub fn attr(&self, el: &El, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", el.0))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// A DOM property (`href` is the resolved URL, `value` a control's current value).
    pub fn property(&self, el: &El, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/property/{name}", el.0))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    pub fn displayed(&self, el: &El) -> bool {
        self.get(&format!("/element/{}/displayed", el.0))
            .is_ok_and(|v| v == json!(true))
    }

    /// Runs `body` as a function in the page (WebDriver's own channel, which the page's
    /// content security policy does not govern) and returns what it returns.
    pub fn script(&self, body: &str) -> Value {
        self.post("/execute/sync", json!({ "script": body, "args": [] }))
            .unwrap_or(Value::Null)
    }

    /// A Chrome DevTools command (to emulate a colour scheme, say).
    pub fn devtools(&self, cmd: &str, params: Value) -> Result<(), String> {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
            .map(|_| ())
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .unwrap_or_else(|e| panic!("resize to {width}x{height}: {e}"));
    }

    /// The session's cookies: name, value and whether scripts are kept from them.
    pub fn cookies(&self) -> Vec<(String, String, bool)> {
        self.get("/cookie")
            .ok()
            .and_then(|v| {
                v.as_array().map(|a| {
                    a.iter()
                        .map(|c| {
                            (
                                c["name"].as_str().unwrap_or_default().to_string(),
                                c["value"].as_str().unwrap_or_default().to_string(),
                                c["httpOnly"] == json!(true),
                            )
                        })
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// The cookies as a `Cookie` header, for fetching what a link points at as this browser.
    pub fn cookie_header(&self) -> String {
        self.cookies()
            .iter()
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Saves the viewport as a PNG.
    pub fn screenshot(&self, path: &Path) {
        let png = self
            .get("/screenshot")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
        match png {
            Some(bytes) => {
                if let Err(e) = std::fs::write(path, bytes) {
                    eprintln!("cannot write {}: {e}", path.display());
                }
            }
            None => eprintln!("no screenshot for {}", path.display()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.call(reqwest::Method::DELETE, "", None);
    }
}

/// The `value` of a WebDriver answer, or its error as `error: message`.
fn unwrap_value(answer: Answer) -> Result<Value, String> {
    let v: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("not JSON ({e}): {}", answer.body))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if answer.status == 200 {
        return Ok(value);
    }
    let message = value["message"].as_str().unwrap_or_default();
    Err(format!(
        "{}: {}",
        value["error"].as_str().unwrap_or("error"),
        message.lines().next().unwrap_or_default()
    ))
}

fn element(v: &Value) -> Result<El, String> {
    v[ELEMENT]
        .as_str()
        .map(|id| El(id.to_string()))
        .ok_or_else(|| format!("not an element: {v}"))
}
