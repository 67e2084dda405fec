//! Printing: aligned tables for people, JSON for scripts. Results go to stdout only.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use surveyor_engine::{EntityCounts, RunReport};

/// The width tables fit unless `--wide` is given: a terminal's common size, so that rows never
/// wrap in a default terminal or a code review.
pub const TABLE_WIDTH: usize = 120;

/// Set once from `--wide`: print every cell whole, however wide the table gets.
static WIDE: AtomicBool = AtomicBool::new(false);

pub fn set_wide(wide: bool) {
    WIDE.store(wide, Ordering::Relaxed);
}

/// Prints rows under a header, columns padded to their widest cell. Unless `--wide` was given,
/// the table fits [`TABLE_WIDTH`] columns: the widest columns are narrowed first and their
/// cells cut with `…`.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut out = std::io::stdout().lock();
    let max = (!WIDE.load(Ordering::Relaxed)).then_some(TABLE_WIDTH);
    for line in render(header, rows, max) {
        let _ = writeln!(out, "{line}");
    }
}

/// The table's lines, fitted to `max` columns when given.
pub fn render(header: &[&str], rows: &[Vec<String>], max: Option<usize>) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    if let Some(max) = max {
        fit(&mut widths, header, max);
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(usize::MAX);
                let c = cut(c, w);
                if i + 1 == cells.len() {
                    c
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    )];
    lines.extend(rows.iter().map(|r| line(r)));
    lines
}

/// Columns of free text (a finding, an error, a list of fields): cut first, so that refs and
/// times stay whole as long as the width allows.
const PROSE: [&str; 5] = ["FINDING", "EVIDENCE", "FIELDS", "ERROR", "REQUIREMENT"];

/// Narrows the widest column, one character at a time, until the row (with two spaces between
/// columns) fits `max`: first only prose columns (down to 30 characters), then any column (down
/// to its header, and at least 6).
fn fit(widths: &mut [usize], header: &[&str], max: usize) {
    let gaps = 2 * widths.len().saturating_sub(1);
    let name = |i: usize| header.get(i).copied().unwrap_or("");
    let prose_floor = |i: usize| {
        if PROSE.contains(&name(i)) {
            30
        } else {
            usize::MAX
        }
    };
    let any_floor = |i: usize| name(i).chars().count().max(6);
    for floor in [&prose_floor as &dyn Fn(usize) -> usize, &any_floor] {
        while widths.iter().sum::<usize>() + gaps > max {
            let widest = widths
                .iter()
                .enumerate()
                .filter(|&(i, &w)| w > floor(i))
                .max_by_key(|&(_, &w)| w)
                .map(|(i, _)| i);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
    }
}

/// Prose for a table cell: JSON pointers (`/spec/owner:`) written as paths and refs in the
/// short form, as the other cells show them.
pub fn readable_text(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            let end = word.trim_end_matches([':', ',', ';', ')']);
            let tail = &word[end.len()..];
            if end.len() > 1 && end.starts_with('/') && !end.starts_with("//") {
                format!("{}{tail}", readable_pointer(end))
            } else if end.contains(":default/") {
                format!("{}{tail}", end.replacen(":default/", ":", 1))
            } else {
                word.replace("~1", "/")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` in at most `width` characters, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut c: String = s.chars().take(width.saturating_sub(1)).collect();
    c.push('…');
    c
}

/// A JSON pointer (`/metadata/annotations/gitlab.com~1access-levels`) as people read a path:
/// `metadata.annotations[gitlab.com/access-levels]`, the escapes undone and any key that holds
/// a `.` or `/` in brackets.
pub fn readable_pointer(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        if key.contains(['.', '/']) || key.is_empty() {
            out.push_str(&format!("[{key}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&key);
        }
    }
    out
}

/// An entity ref in the one form tables use: `kind:name`, with the namespace only when it is
/// not `default` (`group:platform`, `group:ops/sre`). A bare name takes `default_kind`; text
/// that is no ref is shown as written.
pub fn short_ref(text: &str, default_kind: Option<&str>) -> String {
    match surveyor_model::EntityRef::parse_with(text, default_kind, "default") {
        Ok(r) if r.namespace().eq_ignore_ascii_case("default") => {
            format!("{}:{}", r.kind().to_ascii_lowercase(), r.name())
        }
        Ok(r) => format!(
            "{}:{}/{}",
            r.kind().to_ascii_lowercase(),
            r.namespace().to_ascii_lowercase(),
            r.name()
        ),
        Err(_) => text.to_string(),
    }
}

/// A run's counts as a table cell: `+3 ~1 -0` (created, updated, deleted), then renames and
/// restores when there were any, `=N` unchanged, and `?N` in a sweep: changes at the source
/// that no event announced.
pub fn counts_cell(counts: &serde_json::Value) -> String {
    let entities = counts.get("entities").unwrap_or(counts);
    let n = |k: &str| {
        entities
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut s = format!("+{} ~{} -{}", n("created"), n("updated"), n("deleted"));
    if n("renamed") > 0 {
        s.push_str(&format!(" >{}", n("renamed")));
    }
    if n("restored") > 0 {
        s.push_str(&format!(" ^{}", n("restored")));
    }
    s.push_str(&format!(" ={}", n("unchanged")));
    // A sweep of a connector with events: what it found that no event announced.
    if let Some(lost) = counts
        .get("unannounced")
        .and_then(serde_json::Value::as_u64)
    {
        s.push_str(&format!(" ?{lost}"));
    }
    s
}

/// Prints a value as pretty JSON.
pub fn json(value: &impl serde::Serialize) {
    // Written as it is serialised: a large report (100k findings) is never built as one string.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if serde_json::to_writer_pretty(&mut out, value).is_ok() {
        let _ = writeln!(out);
    }
    let _ = out.flush();
}

/// The kinds of change a run counts, in the order tables show them, with their counts.
/// A sync's entity totals as one line: `created 166, updated 0, ..., unchanged 0`.
pub fn write_totals(f: &mut impl std::fmt::Write, c: &EntityCounts) -> std::fmt::Result {
    for (i, (name, n)) in changes(c).iter().enumerate() {
        write!(f, "{}{name} {n}", if i > 0 { ", " } else { "" })?;
    }
    write!(f, ", unchanged {}", c.unchanged)
}

pub fn changes(c: &EntityCounts) -> [(&'static str, u64); 5] {
    [
        ("created", c.created),
        ("updated", c.updated),
        ("renamed", c.renamed),
        ("deleted", c.deleted),
        ("restored", c.restored),
    ]
}

/// Who reads a run's notes, which decides their wording.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Notes {
    /// `surveyor sync`: a refused deletion says which flag overrides it; warnings are shown.
    Sync,
    /// The demo, which syncs on its own: refusals are reported plainly, warnings left out.
    Demo,
}

/// On stderr, what a run of `connector` left undone or found wrong: incomplete scopes, refused
/// deletions, bad input, warnings (for `Notes::Sync`) and the run's error.
pub fn run_notes(connector: &str, report: &RunReport, notes: Notes) {
    for s in &report.scopes {
        if let Some(reason) = s.status.reason() {
            eprintln!(
                "{connector}: scope {:?} incomplete, nothing deleted there: {reason}",
                s.scope
            );
        }
        for f in &s.refused {
            let (refused, hint) = match notes {
                Notes::Sync => ("REFUSED", "; rerun with --allow-mass-delete if intended"),
                Notes::Demo => ("refused", ""),
            };
            eprintln!(
                "{connector}: {refused} to delete {} of {} {} in scope {:?} (limit {:.0}%){hint}",
                f.would_delete,
                f.live,
                f.kind,
                s.scope,
                f.max_ratio * 100.0
            );
        }
    }
    for p in &report.problems {
        eprintln!("{connector}: {p}");
    }
    if notes == Notes::Sync {
        for w in &report.warnings {
            eprintln!("{connector}: warning: {w}");
        }
    }
    if let Some(lost) = report.counts.unannounced.filter(|n| *n > 0) {
        eprintln!(
            "{connector}: this sweep found {lost} changes no event announced (events lost, or changes the source sends no event for); they are in the catalog now"
        );
    }
    if let Some(e) = &report.error {
        eprintln!("{connector}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_tables_are_cut_to_fit_and_narrow_ones_left_alone() {
        let rows = vec![vec!["a".repeat(100), "b".repeat(100), "c".into()]];
        let lines = render(&["ONE", "TWO", "THREE"], &rows, Some(120));
        assert!(lines.iter().all(|l| l.chars().count() <= 120), "{lines:?}");
        assert!(lines[1].contains('…'));
        let whole = render(&["ONE", "TWO", "THREE"], &rows, None);
        assert!(whole[1].chars().count() > 200);
        let small = vec![vec!["x".into(), "y".into()]];
        assert_eq!(render(&["A", "B"], &small, Some(120))[1], "x  y");
    }

    #[test]
    fn pointers_and_refs_read_as_people_write_them() {
        assert_eq!(
            readable_pointer("/metadata/annotations/gitlab.com~1access-levels"),
            "metadata.annotations[gitlab.com/access-levels]"
        );
        assert_eq!(readable_pointer("/spec/owner"), "spec.owner");
        assert_eq!(
            readable_text("/spec/owner: jira says user:default/radia.r, github kept group:ops/x"),
            "spec.owner: jira says user:radia.r, github kept group:ops/x"
        );
        assert_eq!(short_ref("payments", Some("group")), "group:payments");
        assert_eq!(
            short_ref("group:default/platform", Some("group")),
            "group:platform"
        );
        assert_eq!(short_ref("group:ops/sre", None), "group:ops/sre");
        assert_eq!(
            counts_cell(
                &serde_json::json!({"entities": {"created": 3, "updated": 1, "deleted": 0, "unchanged": 5}})
            ),
            "+3 ~1 -0 =5"
        );
        assert_eq!(
            counts_cell(&serde_json::json!({"entities": {"updated": 2}, "unannounced": 2})),
            "+0 ~2 -0 =0 ?2"
        );
    }
}
