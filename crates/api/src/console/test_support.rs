//! What the console's test modules share: the router on loopback over a catalog synced from
//! given observations (redirects not followed), and a page's tables read as text.

use surveyor_model::Observation;
use surveyor_store::Store;

use crate::ApiConfig;
use crate::test_support::sync_and_serve;

pub(crate) struct Console {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    _task: tokio::task::JoinHandle<()>,
}

impl Console {
    pub async fn start(config: ApiConfig, observations: Vec<Observation>) -> Self {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let (addr, task) = sync_and_serve(store.clone(), observations, config, None).await;
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            store,
            _task: task,
        }
    }

    /// Status, headers and body of `GET path`.
    pub async fn fetch(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.expect("body"))
    }

    /// Status and body of `GET path`.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.fetch(path).await;
        (status, body)
    }
}

/// The rows of the table with this id (header row left out): each row's text, tags stripped.
pub(crate) fn rows(html: &str, table_id: &str) -> Vec<String> {
    let Some(start) = html.find(&format!("id=\"{table_id}\"")) else {
        return Vec::new();
    };
    let rest = &html[start..];
    let end = rest.find("</table>").unwrap_or(rest.len());
    rest[..end].split("<tr>").skip(2).map(strip).collect()
}

/// Text without tags, a space where each tag was, whitespace collapsed.
pub(crate) fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in s.chars() {
        match c {
            '<' => tag = true,
            '>' => {
                tag = false;
                out.push(' ');
            }
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
