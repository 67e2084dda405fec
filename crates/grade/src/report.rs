//! Scorecard reports: CSV, and Markdown with the per-team roll-up (the levels each owner's
//! entities reached) before the entities that fall short.

use std::collections::BTreeMap;

use surveyor_model::score::Scorecard;
use surveyor_store::ScoreRow;

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The checks a grade fails, `check: why`, joined by `; `.
pub fn failing_text(row: &ScoreRow) -> String {
    let failing: BTreeMap<String, String> = serde_json::from_str(&row.failing).unwrap_or_default();
    failing
        .iter()
        .map(|(check, why)| format!("{check}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `scorecard,entity,owner,level,failing`, a row per graded entity.
pub fn to_csv(rows: &[ScoreRow]) -> String {
    let mut out = String::from("scorecard,entity,owner,level,failing\n");
    for r in rows {
        let row = [
            r.scorecard.as_str(),
            r.entity_ref.as_str(),
            r.owner.as_deref().unwrap_or(""),
            r.level.as_deref().unwrap_or(""),
            &failing_text(r),
        ]
        .map(csv_field)
        .join(",");
        out.push_str(&row);
        out.push('\n');
    }
    out
}

/// The column of a grade in [`levels`] and [`rollup`]: 0 below every level, else its level's
/// rank + 1.
fn column(card: &Scorecard, row: &ScoreRow) -> usize {
    row.level
        .as_deref()
        .and_then(|l| card.rank(l))
        .map_or(0, |i| i + 1)
}

/// How many of `rows` reached each level: below every level first, then the levels, lowest
/// first.
pub fn levels(card: &Scorecard, rows: &[ScoreRow]) -> Vec<usize> {
    let mut counts = vec![0; card.levels.len() + 1];
    for r in rows {
        counts[column(card, r)] += 1;
    }
    counts
}

/// Per owner, how many entities reached each level (as [`levels`] counts them), owners in
/// order, the entities without an owner last.
pub fn rollup(card: &Scorecard, rows: &[ScoreRow]) -> Vec<(Option<String>, Vec<usize>)> {
    let mut by_owner: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for r in rows {
        let counts = by_owner
            .entry(r.owner.clone())
            .or_insert_with(|| vec![0; card.levels.len() + 1]);
        counts[column(card, r)] += 1;
    }
    let mut out: Vec<_> = by_owner.into_iter().collect();
    out.sort_by_key(|(owner, _)| (owner.is_none(), owner.clone()));
    out
}

/// A Markdown report of one scorecard: its levels, the roll-up per team, then every entity
/// below the highest level with the checks it fails.
pub fn to_markdown(card: &Scorecard, rows: &[ScoreRow]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!("## {}\n\n", cell(&card.title));
    out.push_str(&format!(
        "{} entities graded; levels, lowest first: {}.\n\n",
        rows.len(),
        card.levels.join(", ")
    ));
    let mut header = vec!["owner".to_string(), "below every level".to_string()];
    header.extend(card.levels.iter().cloned());
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for (owner, counts) in rollup(card, rows) {
        let mut line = vec![cell(owner.as_deref().unwrap_or("(no owner)"))];
        line.extend(counts.iter().map(usize::to_string));
        out.push_str(&format!("| {} |\n", line.join(" | ")));
    }
    let top = card.levels.last().map(String::as_str);
    let short: Vec<&ScoreRow> = rows.iter().filter(|r| r.level.as_deref() != top).collect();
    if !short.is_empty() {
        out.push_str("\n| entity | owner | level | failing |\n| --- | --- | --- | --- |\n");
        for r in short {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&r.entity_ref),
                cell(r.owner.as_deref().unwrap_or("")),
                cell(r.level.as_deref().unwrap_or("(none)")),
                cell(&failing_text(r))
            ));
        }
    }
    out
}
