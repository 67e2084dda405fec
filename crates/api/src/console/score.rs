//! Scorecard pages (`/scorecards`, `/scorecards/{name}`): the levels reached, the roll-up per
//! team, the trend, the entities short of the top and the checks that turned; and the sections
//! of an entity's page that show its classification and its grades.
//!
//! They read what the last grading recorded (after each sync); nothing is graded here.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use surveyor_model::score::Scorecard;
use surveyor_store::{ClassificationRow, ScoreRow};

use super::page::{Chrome, PageError, Section, respond, shell};
use super::{entity_href, query, when};
use crate::error::ApiError;
use crate::{AppState, input};

/// Entities listed short of the top level, and turns shown.
const SHORT_SHOWN: usize = 200;
const TURNS_SHOWN: i64 = 20;
/// Trend points shown (the newest).
const TREND_SHOWN: usize = 12;

/// "below" then the levels, as column heads.
fn columns(card: &Scorecard) -> Vec<String> {
    std::iter::once("below".to_string())
        .chain(card.levels.iter().cloned())
        .collect()
}

/// `GET /scorecards`.
pub async fn list(State(state): State<AppState>, chrome: Chrome) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let mut cards = Vec::new();
    for card in &state.config.scorecards {
        let rows = state
            .store
            .scores(&card.name, None)
            .await
            .map_err(|e| with(e.into()))?;
        cards.push((
            card,
            surveyor_grade::report::levels(card, &rows),
            rows.len(),
        ));
    }
    let body = html! {
        h1 { "Scorecards" }
        @if cards.is_empty() {
            p.muted { "No scorecards are configured: add [[scorecards]] to surveyor.toml (see docs/scorecards.md)." }
        } @else {
            p.muted { "Graded after every sync. An entity reaches a level when every check of that level and of the levels below it passes." }
            @for (card, counts, graded) in &cards {
                section aria-labelledby=(format!("card-{}", card.name)) {
                    h2 id=(format!("card-{}", card.name)) {
                        a href=(format!("/scorecards/{}", card.name)) { (card.title) }
                    }
                    p { (graded) " entities graded." }
                    (level_table(card, counts))
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell("Scorecards", Section::Scorecards, chrome, body),
    ))
}

fn level_table(card: &Scorecard, counts: &[usize]) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr { @for c in columns(card) { th scope="col" { (c) } } } }
            tbody { tr { @for n in counts { td.num { (n) } } } }
        } }
    }
}

/// Query parameters of a scorecard's page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Only this owner's entities and trend (`group:default/a`, or `a`).
    pub owner: Option<String>,
}

/// `GET /scorecards/{name}`.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let Path(name) = path.map_err(|e| with(input::bad_path(e)))?;
    let Query(q) = q.map_err(|e| with(ApiError::BadRequest(e.body_text())))?;
    let card = crate::scores::card(&state, &name).map_err(with)?;
    let owner = q
        .owner
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .map(crate::v1::owner_key)
        .transpose()
        .map_err(with)?;
    let store = &state.store;
    let rows = store
        .scores(&card.name, owner.as_deref())
        .await
        .map_err(|e| with(e.into()))?;
    let teams = surveyor_grade::report::rollup(card, &rows);
    let trend = store
        .score_trend(&card.name)
        .await
        .map_err(|e| with(e.into()))?;
    // Per point in time: entities per level (of the owner asked for, or of everyone).
    let mut points: BTreeMap<chrono::DateTime<chrono::Utc>, Vec<i64>> = BTreeMap::new();
    for p in &trend {
        if owner.as_deref().is_some_and(|o| o != p.owner) {
            continue;
        }
        let column = if p.level.is_empty() {
            Some(0)
        } else {
            card.rank(&p.level).map(|i| i + 1)
        };
        let counts = points
            .entry(p.at)
            .or_insert_with(|| vec![0; card.levels.len() + 1]);
        if let Some(c) = column {
            counts[c] += p.entities;
        }
    }
    let newest: Vec<_> = points.iter().rev().take(TREND_SHOWN).collect();
    let top = card.levels.last().map(String::as_str);
    let short: Vec<&ScoreRow> = rows.iter().filter(|r| r.level.as_deref() != top).collect();
    let turns = store
        .score_events(Some(&card.name), None, TURNS_SHOWN)
        .await
        .map_err(|e| with(e.into()))?;
    let self_href = format!("/scorecards/{}", card.name);
    let body = html! {
        nav aria-label="Breadcrumb" { p.muted { a href="/scorecards" { "Scorecards" } " › " (card.title) } }
        h1 { (card.title) }
        p.muted { "Levels, lowest first: " (card.levels.join(", ")) ". "
            @if let Some(o) = &owner { "Only " (o) "'s entities. " a href=(self_href) { "Everyone's" } } }
        (level_table(card, &surveyor_grade::report::levels(card, &rows)))
        section aria-labelledby="checks-h" {
            h2 #checks-h { "Checks" }
            div.table-wrap { table #checks {
                thead { tr { th scope="col" { "Check" } th scope="col" { "Level" } th scope="col" { "Passes when" } } }
                tbody { @for c in &card.checks { tr { td.mono { (c.name) } td { (c.level) } td { (c.test.describe()) } } } }
            } }
        }
        section aria-labelledby="teams-h" {
            h2 #teams-h { "Per team" }
            div.table-wrap { table #teams {
                thead { tr { th scope="col" { "Owner" } @for c in columns(card) { th scope="col" { (c) } } } }
                tbody { @for (o, counts) in &teams {
                    tr {
                        td { @match o {
                            Some(o) => a href=(format!("{self_href}?{}", query(&[("owner", o)]))) { (o) },
                            None => span.muted { "no owner" },
                        } }
                        @for n in counts { td.num { (n) } }
                    }
                } }
            } }
        }
        section aria-labelledby="trend-h" {
            h2 #trend-h { "Trend" }
            @if newest.is_empty() { p.muted { "Not graded yet." } }
            @else {
                p.muted { "A point each time the levels reached changed, newest first." }
                div.table-wrap { table #trend {
                    thead { tr { th scope="col" { "When" } @for c in columns(card) { th scope="col" { (c) } } } }
                    tbody { @for (at, counts) in &newest {
                        tr { td { (when(**at)) } @for n in counts.iter() { td.num { (n) } } }
                    } }
                } }
            }
        }
        section aria-labelledby="short-h" {
            h2 #short-h { "Short of " (top.unwrap_or("the top")) " (" (short.len()) ")" }
            @if short.is_empty() { p { "Every graded entity is at the top level." } }
            @else {
                div.table-wrap { table.stack #short {
                    thead { tr { th scope="col" { "Entity" } th scope="col" { "Owner" } th scope="col" { "Level" } th scope="col" { "Fails" } } }
                    tbody { @for r in short.iter().take(SHORT_SHOWN) {
                        tr {
                            td { a href=(entity_href(&r.entity_ref)) { (r.entity_ref) } }
                            td { (r.owner.clone().unwrap_or_default()) }
                            td { (r.level.clone().unwrap_or_else(|| "below".into())) }
                            td { (surveyor_grade::report::failing_text(r)) }
                        }
                    } }
                } }
                @if short.len() > SHORT_SHOWN { p.muted { "The first " (SHORT_SHOWN) " shown; `surveyor score --scorecard " (card.name) "` lists them all." } }
            }
        }
        section aria-labelledby="turns-h" {
            h2 #turns-h { "Latest turns" }
            @if turns.is_empty() { p.muted { "No check has turned since the first grading." } }
            @else {
                div.table-wrap { table #turns {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Entity" } th scope="col" { "Check" } th scope="col" { "Now" } th scope="col" { "Run" } th scope="col" { "Why" } } }
                    tbody { @for t in &turns {
                        tr {
                            td { (when(t.at)) }
                            td { a href=(entity_href(&t.entity_ref)) { (t.entity_ref) } }
                            td.mono { (t.check_name) }
                            td { @if t.passed { span.badge.st-succeeded { "passes" } } @else { span.badge.st-failed { "fails" } } }
                            td.mono { (t.run_id.clone().unwrap_or_default()) }
                            td { (t.detail) }
                        }
                    } }
                } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        shell(&card.title, Section::Scorecards, chrome, body),
    ))
}

/// An entity's classification: each facet's values, declared or derived, and why.
pub fn classification_section(classes: &[ClassificationRow]) -> Markup {
    html! {
        @if !classes.is_empty() {
            section aria-labelledby="classification-h" {
                h2 #classification-h { "Classification" }
                div.table-wrap { table.stack #classification {
                    thead { tr { th scope="col" { "Facet" } th scope="col" { "Value" } th scope="col" { "How" } th scope="col" { "Evidence" } } }
                    tbody { @for c in classes {
                        @let evidence: Vec<surveyor_grade::Evidence> = serde_json::from_str(&c.evidence).unwrap_or_default();
                        tr {
                            td { (c.facet) }
                            td.mono { (c.value) }
                            td { @if c.declared { "declared" } @else { "derived" } }
                            td { ul { @for e in &evidence { li { span.muted { (e.source) ": " } (e.said) } } } }
                        }
                    } }
                } }
            }
        }
    }
}

/// An entity's grade on each scorecard that grades it.
pub fn grades_section(grades: &[(&Scorecard, ScoreRow)]) -> Markup {
    html! {
        @if !grades.is_empty() {
            section aria-labelledby="grades-h" {
                h2 #grades-h { "Scorecards" }
                div.table-wrap { table.stack #grades {
                    thead { tr { th scope="col" { "Scorecard" } th scope="col" { "Level" } th scope="col" { "Fails" } } }
                    tbody { @for (card, g) in grades {
                        tr {
                            td { a href=(format!("/scorecards/{}", card.name)) { (card.title) } }
                            td { (g.level.clone().unwrap_or_else(|| format!("below {}", card.levels.first().map_or("", String::as_str)))) }
                            td { @let f = surveyor_grade::report::failing_text(g); @if f.is_empty() { "nothing" } @else { (f) } }
                        }
                    } }
                } }
            }
        }
    }
}
