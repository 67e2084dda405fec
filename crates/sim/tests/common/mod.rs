//! A loopback receiver for the fakes' webhooks, shared by the webhook tests.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub type Inbox = Arc<Mutex<Vec<Delivery>>>;

/// A receiver on a free loopback port that keeps every delivery and answers 200; its URL ends
/// in `/hooks/x`.
pub async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/x", listener.local_addr().unwrap());
    let router = Router::new()
        .fallback(
            |State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes| async move {
                inbox.lock().unwrap().push(Delivery { headers, body });
                "ok"
            },
        )
        .with_state(Arc::clone(&inbox));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, inbox)
}

pub fn received(inbox: &Inbox) -> Vec<Delivery> {
    inbox.lock().unwrap().clone()
}
