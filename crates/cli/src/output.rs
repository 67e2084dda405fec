//! Printing: aligned tables for people, JSON for scripts. Results go to stdout only.

use std::io::Write;

use surveyor_engine::{EntityCounts, RunReport};

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == cells.len() {
                    c.clone()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row.clone()));
    }
}

/// Prints a value as pretty JSON.
pub fn json(value: &serde_json::Value) {
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
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
    if let Some(e) = &report.error {
        eprintln!("{connector}: {e}");
    }
}
