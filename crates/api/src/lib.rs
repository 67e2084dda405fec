//! surveyor's HTTP API: the catalog for portal frontends (its own `/api/v1` and Backstage's
//! `/api/catalog` shapes), history, runs and connectors, health, metrics and the OpenAPI document.
//!
//! It also serves the console, HTML pages for people (`/`), from the same store queries.
//!
//! Read-only except `POST /api/v1/connectors/{id}/sync` and Backstage's `POST
//! /api/catalog/refresh`. Optional bearer tokens: read tokens guard everything but the probes;
//! trigger tokens are needed to start a sync.

mod backstage;
mod bodies;
mod console;
mod docs;
mod error;
mod hooks;
mod input;
mod limit;
mod metrics;
mod scores;
mod server;
mod v1;
mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use surveyor_model::Secret;
use surveyor_store::Store;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::limit::Limiter;

pub use crate::docs::ApiDoc;
pub use crate::error::ApiError;
pub use crate::limit::default_max_expensive_requests;
pub use crate::metrics::Metrics;
pub use crate::server::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, ServeOptions,
    default_max_connections, serve_with,
};
pub use crate::views::classification as classification_document;
pub use crate::views::entity as entity_document;
pub use crate::views::starting_at as relations_starting_at;
/// The port to whatever runs the connectors, defined with the model so that the engine can
/// implement it without depending on the API.
pub use surveyor_model::control::{ConnectorView, Control, TriggerRefusal};

/// `[server]` settings the API enforces.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub read_tokens: Vec<Secret>,
    pub trigger_tokens: Vec<Secret>,
    pub cors_origins: Vec<String>,
    pub max_page_size: u32,
    /// `[audit] cosmetic`: the drift audit also reports cosmetic differences.
    pub audit_cosmetic: bool,
    /// Expensive requests (in-memory Backstage filters, facets, the graph, the audits) served
    /// at once; past it they queue briefly, then are answered 503. `None`: no limit.
    pub max_expensive_requests: Option<usize>,
    /// A chunked request body must arrive within this long (`serve` sets the header-read
    /// timeout): else a client could hold a connection by sending one a byte at a time.
    pub body_read_timeout: std::time::Duration,
    /// Serve the console (HTML pages) at `/`.
    pub console: bool,
    /// `[[scorecards]]`: their levels and titles for the scorecard routes and pages.
    pub scorecards: Vec<surveyor_model::score::Scorecard>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            read_tokens: Vec::new(),
            trigger_tokens: Vec::new(),
            cors_origins: Vec::new(),
            max_page_size: 1000,
            audit_cosmetic: false,
            max_expensive_requests: Some(default_max_expensive_requests()),
            body_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            console: true,
            scorecards: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub control: Option<Arc<dyn Control>>,
    pub metrics: Arc<Metrics>,
    /// The limit on expensive requests; none when unlimited.
    pub expensive: Option<Arc<Limiter>>,
}

impl AppState {
    /// A permit for an expensive request, held until its answer is built, or the 503 that
    /// refuses it (counted by route). Expensive are the requests whose work or memory grows
    /// with the catalog, not with the page asked for:
    ///
    /// - Backstage filters the store cannot evaluate, and every `orderField`: the candidates
    ///   (often the whole catalog) are read, turned into documents and matched in memory;
    /// - entity facets: the same over every entity the filter selects;
    /// - by-query with `fullTextFilterTerm`: it counts every match, a scan of every entity;
    /// - the graph: up to five hops of relation lookups over up to `max_page_size` refs each;
    /// - the audits (the whole catalog, in memory) and their histories (every finding ever).
    ///
    /// Lists the database pages (`/api/v1/entities`, Backstage filters on kind, namespace and
    /// owner) cost a page, and their queries are bounded by the database pool; probes, by-name
    /// and single entities cost one row: none of them is limited.
    pub(crate) async fn expensive(
        &self,
        route: &'static str,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
        let Some(limiter) = &self.expensive else {
            return Ok(None);
        };
        match limiter.acquire().await {
            Ok(permit) => Ok(Some(permit)),
            Err(limit::Refused) => {
                self.metrics.shed(route);
                Err(ApiError::Overloaded(format!(
                    "{route}: this server is answering as many expensive requests as it is \
                     configured for (max_expensive_requests); retry in {} s",
                    limit::RETRY_AFTER_SECS
                )))
            }
        }
    }
}

/// The whole API. `control` enables the connectors routes and triggers.
pub fn router(store: Store, config: ApiConfig, control: Option<Arc<dyn Control>>) -> Router {
    let limiter = config
        .max_expensive_requests
        .map(|n| Arc::new(Limiter::for_requests(n)));
    build(store, config, control, limiter)
}

fn build(
    store: Store,
    config: ApiConfig,
    control: Option<Arc<dyn Control>>,
    expensive: Option<Arc<Limiter>>,
) -> Router {
    let cors = cors_layer(&config.cors_origins);
    let console = config.console;
    let state = AppState {
        store,
        config: Arc::new(config),
        control,
        metrics: Arc::new(Metrics::default()),
        expensive,
    };
    let guarded = Router::new()
        .route("/api/v1/entities", get(v1::list_entities))
        .route(
            "/api/v1/entities/{kind}/{namespace}/{name}",
            get(v1::get_entity),
        )
        .route(
            "/api/v1/entities/{kind}/{namespace}/{name}/graph",
            get(v1::graph),
        )
        .route("/api/v1/classifications", get(v1::classifications))
        .route("/api/v1/scorecards", get(scores::list))
        .route("/api/v1/scorecards/{scorecard}", get(scores::grades))
        .route("/api/v1/scorecards/{scorecard}/trend", get(scores::trend))
        .route("/api/v1/scorecards/{scorecard}/turns", get(scores::turns))
        .route("/api/v1/changes", get(v1::list_changes))
        .route("/api/v1/runs", get(v1::list_runs))
        .route("/api/v1/connectors", get(v1::list_connectors))
        .route("/api/v1/connectors/{id}/sync", post(v1::trigger))
        .route("/api/v1/audit/ownership", get(v1::audit_ownership))
        .route("/api/v1/audit/drift", get(v1::audit_drift))
        .route(
            "/api/v1/audit/ownership/history",
            get(v1::audit_ownership_history),
        )
        .route("/api/v1/audit/drift/history", get(v1::audit_drift_history))
        .route("/api/catalog/entities", get(backstage::entities))
        .route("/api/catalog/entities/by-query", get(backstage::by_query))
        .route(
            "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
            get(backstage::by_name),
        )
        .route("/api/catalog/entity-facets", get(backstage::facets))
        .route("/api/catalog/entities/by-refs", post(backstage::by_refs))
        .route(
            "/api/catalog/entities/by-uid/{uid}",
            get(backstage::by_uid).delete(backstage::read_only),
        )
        .route(
            "/api/catalog/entities/by-name/{kind}/{namespace}/{name}/ancestry",
            get(backstage::ancestry),
        )
        .route(
            "/api/catalog/locations",
            get(backstage::locations).post(backstage::read_only),
        )
        .route(
            "/api/catalog/locations/{id}",
            get(backstage::location).delete(backstage::read_only),
        )
        .route(
            "/api/catalog/locations/by-entity/{kind}/{namespace}/{name}",
            get(backstage::location_by_entity),
        )
        .route("/api/catalog/refresh", post(backstage::refresh))
        .route(
            "/api/catalog/validate-entity",
            post(backstage::validate_entity),
        )
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    // Webhooks carry the vendor's signature, not a bearer token: the connector checks it.
    let open = Router::new()
        .route("/hooks/{connector}", post(hooks::deliver))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    let mut app = guarded.merge(open);
    if console {
        app = app.merge(console::routes(state.clone()));
    }
    let mut app = app
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(format!("this route does not answer {method}"))
        })
        .layer(middleware::from_fn_with_state(state.clone(), input::screen))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(backstage::errors::reshape))
        .layer(axum::extract::DefaultBodyLimit::max(input::MAX_BODY_BYTES))
        .with_state(state);
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            // The probe is public: the reason goes to the log, not to whoever asks.
            tracing::warn!(error = %e, "readiness: the catalog database does not answer");
            ApiError::Unavailable("the catalog database does not answer".into()).into_response()
        }
    }
}

async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = &state.config;
    // The scheme is case-insensitive (RFC 9110); anything but a bearer token presents nothing.
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    // A console visitor's cookie reads too (never triggers: a sync takes a bearer header).
    let cookie = console::cookie_token(request.headers());
    let is = |tokens: &[Secret]| presented.is_some_and(|p| tokens.iter().any(|t| t.matches(p)));
    let cookie_is = |tokens: &[Secret]| {
        cookie
            .as_deref()
            .is_some_and(|p| tokens.iter().any(|t| t.matches(p)))
    };
    // Backstage's catalog takes POSTs that only read (by-refs, validate-entity) or that it
    // refuses (locations); of its routes only a refresh starts a sync.
    let path = request.uri().path();
    let triggering = request.method() == Method::POST
        && (!backstage::errors::is_catalog(path) || path == "/api/catalog/refresh");
    if triggering {
        if config.trigger_tokens.is_empty() {
            return ApiError::Forbidden(
                "triggering syncs is off: set [server] trigger_tokens to enable it".into(),
            )
            .into_response();
        }
        if !is(&config.trigger_tokens) {
            if is(&config.read_tokens) {
                return ApiError::Forbidden("this token may read but not trigger syncs".into())
                    .into_response();
            }
            return ApiError::Unauthorized("a trigger token is required".into()).into_response();
        }
    } else if !config.read_tokens.is_empty()
        && !is(&config.read_tokens)
        && !is(&config.trigger_tokens)
        && !cookie_is(&config.read_tokens)
        && !cookie_is(&config.trigger_tokens)
    {
        return ApiError::Unauthorized("a bearer token is required".into()).into_response();
    }
    next.run(request).await
}

/// Counts and times every request by route template (not raw path: ids would explode labels).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let span = tracing::info_span!("request", method = %request.method(), route = %route);
    let response = tracing::Instrument::instrument(next.run(request), span).await;
    state
        .metrics
        .observe(&route, response.status().as_u16(), started.elapsed());
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, with the default
/// [`ServeOptions`] (timeouts, connection cap); [`serve_with`] takes them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, ServeOptions::default(), shutdown).await
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
mod relation_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
