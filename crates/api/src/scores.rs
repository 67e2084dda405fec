//! `/api/v1/scorecards`: the configured scorecards with how many entities reached each level,
//! one scorecard's grades with the roll-up per team, its trend, and the checks that turned.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use surveyor_model::score::Scorecard;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::{AppState, input};

/// A scorecard and how many entities reached each level.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardSummary {
    #[schema(example = "operational-readiness")]
    pub name: String,
    #[schema(example = "Operational readiness")]
    pub title: String,
    /// Lowest first.
    #[schema(example = json!(["bronze", "silver", "gold"]))]
    pub levels: Vec<String>,
    /// Entities per level; `below` counts those below the lowest.
    #[schema(example = json!({"below": 2, "bronze": 10, "silver": 5, "gold": 1}))]
    pub counts: BTreeMap<String, usize>,
    pub graded: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScorecardList {
    pub items: Vec<ScorecardSummary>,
}

/// One entity's grade.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grade {
    #[schema(example = "component:default/checkout")]
    pub entity: String,
    pub owner: Option<String>,
    /// The highest level reached; `null` below the lowest.
    pub level: Option<String>,
    /// The checks it fails and why.
    #[schema(value_type = Object, example = json!({"runbook": "no runbook link"}))]
    pub failing: Value,
    /// When it reached its level.
    pub since: DateTime<Utc>,
}

/// One owner's entities per level.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRollup {
    /// `null`: the entities without an owner.
    pub owner: Option<String>,
    #[schema(example = json!({"below": 0, "bronze": 3, "silver": 1, "gold": 0}))]
    pub counts: BTreeMap<String, usize>,
}

/// One scorecard's grades.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardGrades {
    pub scorecard: ScorecardSummary,
    pub teams: Vec<TeamRollup>,
    pub items: Vec<Grade>,
}

/// Query parameters of one scorecard's grades.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GradeQuery {
    /// Only this owner's entities (`group:default/a`, or `a`).
    pub owner: Option<String>,
    /// Only entities at this level (`below`: under the lowest).
    pub level: Option<String>,
}

/// A point of the trend: an owner's entities at a level then.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendPoint {
    pub at: DateTime<Utc>,
    pub owner: Option<String>,
    /// `null`: below the lowest level.
    pub level: Option<String>,
    pub entities: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    pub points: Vec<TrendPoint>,
}

/// A check that turned from pass to fail or back.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub at: DateTime<Utc>,
    /// The newest run when it was graded: the run that caused it.
    pub run_id: Option<String>,
    pub entity: String,
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Turns {
    pub items: Vec<Turn>,
}

/// Query parameters of the turns.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TurnQuery {
    /// Only this entity's (a ref).
    pub entity: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The configured scorecard of this name (ignoring case), or a 404.
pub(crate) fn card<'a>(state: &'a AppState, name: &str) -> Result<&'a Scorecard, ApiError> {
    input::value("scorecard", name)?;
    let wanted = name.to_ascii_lowercase();
    state
        .config
        .scorecards
        .iter()
        .find(|c| c.name == wanted)
        .ok_or_else(|| ApiError::NotFound(format!("no scorecard {name:?}")))
}

/// `below` and each level of `card`, with `counts` in that order (as the report counts them).
fn named(card: &Scorecard, counts: Vec<usize>) -> BTreeMap<String, usize> {
    std::iter::once("below".to_string())
        .chain(card.levels.iter().cloned())
        .zip(counts)
        .collect()
}

/// Entities per level of `card` among `rows`, `below` first.
fn counts(card: &Scorecard, rows: &[surveyor_store::ScoreRow]) -> BTreeMap<String, usize> {
    named(card, surveyor_grade::report::levels(card, rows))
}

fn summary(card: &Scorecard, rows: &[surveyor_store::ScoreRow]) -> ScorecardSummary {
    ScorecardSummary {
        name: card.name.clone(),
        title: card.title.clone(),
        levels: card.levels.clone(),
        counts: counts(card, rows),
        graded: rows.len(),
    }
}

/// The scorecards `surveyor.toml` configures, each with how many entities reached each level
/// when they were last graded (after the last sync).
#[utoipa::path(get, path = "/api/v1/scorecards", tag = "scorecards",
    responses((status = 200, description = "every scorecard with its counts per level", body = ScorecardList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<ScorecardList>, ApiError> {
    let mut items = Vec::new();
    for card in &state.config.scorecards {
        let rows = state.store.scores(&card.name, None).await?;
        items.push(summary(card, &rows));
    }
    Ok(Json(ScorecardList { items }))
}

/// One scorecard's grades by entity, with the roll-up per team.
#[utoipa::path(get, path = "/api/v1/scorecards/{scorecard}", tag = "scorecards",
    params(("scorecard" = String, Path, description = "The scorecard's name.", example = "operational-readiness"), GradeQuery),
    responses((status = 200, description = "the grades and the roll-up per team", body = ScorecardGrades),
        (status = 400, description = "a bad parameter", body = crate::bodies::ErrorBody),
        (status = 404, description = "no such scorecard", body = crate::bodies::ErrorBody)))]
pub async fn grades(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GradeQuery>, QueryRejection>,
) -> Result<Json<ScorecardGrades>, ApiError> {
    let Path(name) = path.map_err(input::bad_path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let card = card(&state, &name)?;
    let owner = q.owner.as_deref().map(crate::v1::owner_key).transpose()?;
    if let Some(level) = &q.level
        && level != "below"
        && card.rank(level).is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "level {level:?}: this scorecard's levels are below, {}",
            card.levels.join(", ")
        )));
    }
    let all = state.store.scores(&card.name, owner.as_deref()).await?;
    let teams = surveyor_grade::report::rollup(card, &all)
        .into_iter()
        .map(|(owner, per_level)| TeamRollup {
            owner,
            counts: named(card, per_level),
        })
        .collect();
    let items = all
        .iter()
        .filter(|r| {
            q.level.as_deref().is_none_or(|l| {
                r.level
                    .as_deref()
                    .unwrap_or("below")
                    .eq_ignore_ascii_case(l)
            })
        })
        .map(|r| Grade {
            entity: r.entity_ref.clone(),
            owner: r.owner.clone(),
            level: r.level.clone(),
            failing: serde_json::from_str(&r.failing).unwrap_or_default(),
            since: r.since,
        })
        .collect();
    Ok(Json(ScorecardGrades {
        scorecard: summary(card, &all),
        teams,
        items,
    }))
}

/// A scorecard's trend: each time the roll-up changed, every owner's entities per level.
#[utoipa::path(get, path = "/api/v1/scorecards/{scorecard}/trend", tag = "scorecards",
    params(("scorecard" = String, Path, description = "The scorecard's name.", example = "operational-readiness")),
    responses((status = 200, description = "the points, oldest first", body = Trend),
        (status = 404, description = "no such scorecard", body = crate::bodies::ErrorBody)))]
pub async fn trend(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Trend>, ApiError> {
    let Path(name) = path.map_err(input::bad_path)?;
    let card = card(&state, &name)?;
    let blank = |s: String| (!s.is_empty()).then_some(s);
    let points = state
        .store
        .score_trend(&card.name)
        .await?
        .into_iter()
        .map(|p| TrendPoint {
            at: p.at,
            owner: blank(p.owner),
            level: blank(p.level),
            entities: p.entities,
        })
        .collect();
    Ok(Json(Trend { points }))
}

/// The checks of a scorecard that turned from pass to fail or back, newest first, each with
/// the run that caused it.
#[utoipa::path(get, path = "/api/v1/scorecards/{scorecard}/turns", tag = "scorecards",
    params(("scorecard" = String, Path, description = "The scorecard's name.", example = "operational-readiness"), TurnQuery),
    responses((status = 200, description = "the turns, newest first", body = Turns),
        (status = 400, description = "a bad parameter", body = crate::bodies::ErrorBody),
        (status = 404, description = "no such scorecard", body = crate::bodies::ErrorBody)))]
pub async fn turns(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<TurnQuery>, QueryRejection>,
) -> Result<Json<Turns>, ApiError> {
    let Path(name) = path.map_err(input::bad_path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let card = card(&state, &name)?;
    let limit = crate::v1::page_size(q.limit.or(Some(100)), 1000)?;
    let entity = match q.entity.as_deref() {
        Some(e) => Some(
            surveyor_model::EntityRef::parse_with(e, None, "default")
                .map_err(|err| ApiError::BadRequest(format!("entity: {err}")))?
                .key(),
        ),
        None => None,
    };
    let items = state
        .store
        .score_events(Some(&card.name), entity.as_deref(), limit)
        .await?
        .into_iter()
        .map(|e| Turn {
            at: e.at,
            run_id: e.run_id,
            entity: e.entity_ref,
            check: e.check_name,
            passed: e.passed,
            detail: e.detail,
        })
        .collect();
    Ok(Json(Turns { items }))
}
