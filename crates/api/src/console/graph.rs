//! The graph page: an entity's neighbourhood to a chosen depth as an SVG picture laid out on
//! the server, with the same entities and relations as tables for readers who cannot see it.

mod layout;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use surveyor_model::entity::RELATION_PAIRS;
use surveyor_model::{EntityRef, inverse_relation};

use super::entity_href;
use super::page::{Chrome, PageError, Section, respond, shell};
use crate::error::ApiError;
use crate::v1::{EntityPath, Neighbourhood, neighbourhood};
use crate::{AppState, input};

use layout::{Drawing, MARGIN, Rect, along, layout};

/// Hops followed when the form does not say.
const DEPTH_DEFAULT: u32 = 2;
/// The deepest the page goes: past four hops a neighbourhood is most of the catalog.
const DEPTH_MAX: u32 = 4;
/// Boxes in the picture (the nearest first); the tables list everything found.
pub const PICTURE_CAP: usize = 120;
/// Box height: a line for the kind and one for the name.
const BOX_H: f64 = 38.0;
/// Names longer than this are cut in the box (the tooltip and the table have them whole).
const NAME_CHARS: usize = 28;

/// Each relation pair drawn once, in the direction that puts owners, containers and
/// dependents above what they hold or use: (the type drawn, its inverse).
const DRAWN: &[(&str, &str)] = &[
    ("ownerOf", "ownedBy"),
    ("hasPart", "partOf"),
    ("hasMember", "memberOf"),
    ("parentOf", "childOf"),
    ("dependsOn", "dependencyOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
];

/// A relation in the direction it is drawn: `(from, type, to)`.
fn canonical(source: &str, kind: &str, target: &str) -> (String, String, String) {
    match DRAWN.iter().find(|(_, inverse)| *inverse == kind) {
        Some((drawn, _)) => (target.into(), (*drawn).into(), source.into()),
        None => (source.into(), kind.into(), target.into()),
    }
}

/// The page's parameters: `depth` (1-4) and `relation` (types, comma-separated or repeated).
#[derive(Debug, PartialEq, Eq)]
struct Params {
    depth: u32,
    /// The relation types asked for, spelled as the catalog spells them; empty for all.
    relations: BTreeSet<&'static str>,
}

impl Params {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut p = Params {
            depth: DEPTH_DEFAULT,
            relations: BTreeSet::new(),
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            input::value(&k, &v)?;
            match &*k {
                "depth" if !v.trim().is_empty() => {
                    p.depth = v
                        .trim()
                        .parse()
                        .ok()
                        .filter(|d| (1..=DEPTH_MAX).contains(d))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "depth {v:?}: give a number of hops from 1 to {DEPTH_MAX}"
                            ))
                        })?;
                }
                "relation" => {
                    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        p.relations.insert(known_relation(t)?);
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The types the walk follows: each one asked for and its inverse (the picture draws a
    /// pair as one edge, so a filter names the pair); `None` for all.
    fn wanted(&self) -> Option<BTreeSet<String>> {
        (!self.relations.is_empty()).then(|| {
            self.relations
                .iter()
                .flat_map(|t| [Some(*t), inverse_relation(t)])
                .flatten()
                .map(str::to_string)
                .collect()
        })
    }

    fn asks_for(&self, pair: (&str, &str)) -> bool {
        self.relations.contains(pair.0) || self.relations.contains(pair.1)
    }
}

/// A relation type as the catalog spells it, from any case, or the 400 listing the types.
fn known_relation(t: &str) -> Result<&'static str, ApiError> {
    RELATION_PAIRS
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .find(|k| k.eq_ignore_ascii_case(t))
        .ok_or_else(|| {
            let all: Vec<&str> = RELATION_PAIRS.iter().flat_map(|(a, b)| [*a, *b]).collect();
            ApiError::BadRequest(format!(
                "relation {t:?} is not a relation type; the types are {}",
                all.join(", ")
            ))
        })
}

/// An entity of the neighbourhood.
struct Node {
    key: String,
    /// Its ref as people read it.
    display: String,
    kind: String,
    /// The name, with its namespace when that is not `default`.
    name: String,
    depth: u32,
}

impl Node {
    fn new(key: String, display: String, depth: u32) -> Self {
        let (kind, name) = match EntityRef::parse_with(&display, None, "default") {
            Ok(r) if r.namespace().eq_ignore_ascii_case("default") => {
                (r.kind().to_string(), r.name().to_string())
            }
            Ok(r) => (
                r.kind().to_string(),
                format!("{}/{}", r.namespace(), r.name()),
            ),
            Err(_) => (String::new(), display.clone()),
        };
        Node {
            key,
            display,
            kind,
            name,
            depth,
        }
    }

    /// The name as it fits in a box.
    fn short_name(&self) -> String {
        if self.name.chars().count() <= NAME_CHARS {
            self.name.clone()
        } else {
            let cut: String = self.name.chars().take(NAME_CHARS - 1).collect();
            format!("{cut}…")
        }
    }

    /// The box's size from its text: about 7 px a character at 12 px, 6 at 10 px.
    fn size(&self) -> (f64, f64) {
        let name = self.short_name().chars().count() as f64 * 7.2;
        let kind = self.kind.chars().count() as f64 * 6.2;
        (name.max(kind).max(52.0) + 20.0, BOX_H)
    }
}

/// `GET /entities/{kind}/{namespace}/{name}/graph`.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    path: Result<Path<EntityPath>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let with = |e: ApiError| PageError { error: e, chrome };
    let Path(p) = path.map_err(|e| with(input::bad_path(e)))?;
    let key = input::path_ref(&p.kind, &p.namespace, &p.name).map_err(with)?;
    let params = Params::parse(raw.as_deref()).map_err(with)?;
    let _permit = state
        .expensive("/entities/{kind}/{namespace}/{name}/graph")
        .await
        .map_err(with)?;
    let store = &state.store;
    let row = store
        .get_entity(&key)
        .await
        .map_err(|e| with(e.into()))?
        .ok_or_else(|| with(ApiError::NotFound(format!("no entity {key}"))))?;
    let cap = state.config.max_page_size.max(1) as usize;
    let found = neighbourhood(store, key, params.depth, params.wanted().as_ref(), cap)
        .await
        .map_err(|e| with(e.into()))?;
    let body: serde_json::Value = serde_json::from_str(&row.body).unwrap_or_default();
    let title = body["metadata"]["title"].as_str();
    let markup = render(&row.display_ref, title, &params, found);
    Ok(respond(
        StatusCode::OK,
        shell(
            &format!("Graph of {}", row.display_ref),
            Section::Catalog,
            chrome,
            markup,
        ),
    ))
}

/// The page's body from what the walk found.
fn render(root: &str, title: Option<&str>, params: &Params, found: Neighbourhood) -> Markup {
    let Neighbourhood {
        nodes,
        mut display,
        edges,
        truncated,
    } = found;
    let mut nodes: Vec<Node> = nodes
        .into_iter()
        .map(|(key, depth)| {
            let shown = match depth {
                0 => root.to_string(),
                _ => display.remove(&key).unwrap_or_else(|| key.clone()),
            };
            Node::new(key, shown, depth)
        })
        .collect();
    nodes.sort_by(|a, b| (a.depth, &a.key).cmp(&(b.depth, &b.key)));
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.key.as_str(), i))
        .collect();
    let relations: BTreeSet<(usize, String, usize)> = edges
        .iter()
        .filter_map(|(s, k, t)| {
            let (s, k, t) = canonical(s, k, t);
            Some((*index.get(s.as_str())?, k, *index.get(t.as_str())?))
        })
        .collect();
    let shown = nodes.len().min(PICTURE_CAP);
    let root_href = entity_href(root);
    let kind = nodes.first().map(|n| n.kind.clone()).unwrap_or_default();
    let depth_options: Vec<u32> = (1..=DEPTH_MAX).collect();
    html! {
        nav aria-label="Breadcrumb" {
            p.muted {
                a href="/" { "Catalog" } " › "
                a href=(format!("/?{}", super::query(&[("kind", &kind)]))) { (kind) } " › "
                a href=(root_href) { (root) } " › graph"
            }
        }
        h1 { "Graph of " (root) }
        @if let Some(t) = title { p.muted { (t) } }
        form.filters.graph-filters method="get" action=(format!("{root_href}/graph")) {
            label { "Depth"
                select name="depth" {
                    @for d in &depth_options {
                        option value=(d) selected[*d == params.depth] {
                            (d) (if *d == 1 { " hop" } else { " hops" })
                        }
                    }
                }
            }
            fieldset {
                legend { "Relations (each with its inverse; none ticked follows all)" }
                @for (a, b) in RELATION_PAIRS {
                    label { input type="checkbox" name="relation" value=(a) checked[params.asks_for((*a, *b))];
                        " " (a) " / " (b) }
                }
            }
            button.primary type="submit" { "Show" }
        }
        @if shown < nodes.len() || truncated {
            div.notice role="status" { p {
                "Showing " (shown) " of " @if truncated { "more than " } (nodes.len())
                " entities, the nearest first: narrow the relations or lower the depth."
            } }
        }
        @if nodes.len() == 1 {
            p.muted { "No relations within " (params.depth) (if params.depth == 1 { " hop." } else { " hops." }) }
        }
        (picture(root, title, &nodes[..shown], &relations, params.depth))
        section aria-labelledby="graph-text-h" {
            h2 #graph-text-h { "Entities and relations" }
            div.table-wrap { table #graph-nodes {
                caption.muted { (nodes.len()) " entities within " (params.depth) " hops" }
                thead { tr { th scope="col" { "Entity" } th scope="col" { "Kind" } th scope="col" { "Hops" } } }
                tbody { @for n in &nodes {
                    tr { td { a href=(entity_href(&n.display)) { (n.display) } } td { (n.kind) } td { (n.depth) } }
                } }
            } }
            div.table-wrap { table #graph-edges {
                caption.muted { (relations.len()) " relations" }
                thead { tr { th scope="col" { "From" } th scope="col" { "Relation" } th scope="col" { "To" } } }
                tbody { @for (s, k, t) in &relations {
                    @let (s, t) = (&nodes[*s], &nodes[*t]);
                    tr { td { a href=(entity_href(&s.display)) { (s.display) } } td { (k) } td { a href=(entity_href(&t.display)) { (t.display) } } }
                } }
            } }
        }
    }
}

/// A coordinate, short: whole pixels bare, else one decimal.
fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn path_d(line: &[(f64, f64)]) -> String {
    let mut d = String::with_capacity(line.len() * 12);
    for (i, (x, y)) in line.iter().enumerate() {
        d.push(if i == 0 { 'M' } else { 'L' });
        d.push_str(&num(*x));
        d.push(' ');
        d.push_str(&num(*y));
    }
    d
}

/// Where each edge's label goes: halfway along it, or as near as possible to that without
/// covering a box or an earlier label.
fn place_labels(lines: &[(&[(f64, f64)], String)], boxes: &[Rect]) -> Vec<Option<Rect>> {
    let mut placed: Vec<Rect> = Vec::with_capacity(lines.len());
    let mut out = Vec::with_capacity(lines.len());
    for (line, text) in lines {
        // About 5.5 px a character at 10 px.
        let (w, h) = (text.chars().count() as f64 * 5.5 + 4.0, 12.0);
        let at = |t: f64| along(line, t).map(|(cx, cy)| Rect { cx, cy, w, h });
        let free = |r: &Rect| !boxes.iter().chain(&placed).any(|b| b.overlaps(r));
        let best = [0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8]
            .into_iter()
            .filter_map(at)
            .find(free)
            .or_else(|| at(0.5));
        if let Some(r) = best {
            placed.push(r);
        }
        out.push(best);
    }
    out
}

/// The SVG: an edge per related pair of boxes (types joined), then the boxes as links.
fn picture(
    root: &str,
    title: Option<&str>,
    nodes: &[Node],
    relations: &BTreeSet<(usize, String, usize)>,
    depth: u32,
) -> Markup {
    let sizes: Vec<(f64, f64)> = nodes.iter().map(Node::size).collect();
    let depths: Vec<u32> = nodes.iter().map(|n| n.depth).collect();
    let mut joined: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
    for (s, k, t) in relations {
        if s != t && *s < nodes.len() && *t < nodes.len() {
            joined.entry((*s, *t)).or_default().push(k);
        }
    }
    let pairs: Vec<(usize, usize)> = joined.keys().copied().collect();
    let Drawing { rects, routes } = layout(&sizes, &pairs, &depths);
    let lines: Vec<(&[(f64, f64)], String)> = routes
        .iter()
        .zip(joined.values())
        .filter(|(route, _)| route.len() >= 2)
        .map(|(route, kinds)| (route.as_slice(), kinds.join(", ")))
        .collect();
    let labels = place_labels(&lines, &rects);
    // The canvas holds every box and label; a label may stick out left of the first box.
    let (mut left, mut top) = (0.0_f64, 0.0_f64);
    let (mut right, mut bottom) = (0.0_f64, 0.0_f64);
    for r in rects.iter().chain(labels.iter().flatten()) {
        left = left.min(r.left() - MARGIN / 2.0);
        top = top.min(r.top() - MARGIN / 2.0);
        right = right.max(r.right() + MARGIN);
        bottom = bottom.max(r.bottom() + MARGIN);
    }
    let (width, height) = (right - left, bottom - top);
    let described = format!(
        "{} entities within {depth} hops of {root}{}, and {} relations between them, drawn \
         from owners, containers and dependents down to what they hold or use. The tables \
         below list the same.",
        nodes.len(),
        title.map(|t| format!(" ({t})")).unwrap_or_default(),
        lines.len(),
    );
    html! {
        figure.graph {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="graph-title graph-desc"
                width=(num(width)) height=(num(height)) viewBox=(format!("{} {} {} {}", num(left), num(top), num(width), num(height))) {
                title #graph-title { "Neighbourhood of " (root) }
                desc #graph-desc { (described) }
                defs {
                    marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                        path d="M0 0L10 5L0 10z" {}
                    }
                }
                @for (l, _) in &lines {
                    path.edge d=(path_d(l)) marker-end="url(#arrow)" {}
                }
                @for (n, r) in nodes.iter().zip(&rects) {
                    a href=(entity_href(&n.display)) {
                        title { (n.display) }
                        g class=(if n.depth == 0 { "node root" } else { "node" }) {
                            rect x=(num(r.cx - r.w / 2.0)) y=(num(r.cy - r.h / 2.0)) width=(num(r.w)) height=(num(r.h)) rx="4" {}
                            text.kind x=(num(r.cx)) y=(num(r.cy - r.h / 2.0 + 14.0)) { (n.kind) }
                            text.name x=(num(r.cx)) y=(num(r.cy - r.h / 2.0 + 30.0)) { (n.short_name()) }
                        }
                    }
                }
                @for ((_, label), at) in lines.iter().zip(&labels) {
                    @if let Some(r) = at {
                        text.edge-label x=(num(r.cx)) y=(num(r.cy + 3.5)) { (label) }
                    }
                }
            }
            figcaption.muted { "Select an entity to open its page; arrows point from owners, containers and dependents to what they hold or use." }
        }
    }
}
