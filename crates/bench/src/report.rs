//! How a scenario hands back its figures: a readable table on stdout and one JSON document
//! (scenario, date, machine, load, parameters, results) written where `--json` says.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::machine::Machine;

/// What a scenario measured; `main` adds the machine and writes it.
pub struct Outcome {
    pub parameters: serde_json::Value,
    pub results: serde_json::Value,
}

impl Outcome {
    pub fn new(parameters: impl Serialize, results: impl Serialize) -> anyhow::Result<Self> {
        Ok(Self {
            parameters: serde_json::to_value(parameters)?,
            results: serde_json::to_value(results)?,
        })
    }
}

#[derive(Serialize)]
pub struct Report<'a> {
    pub scenario: &'a str,
    pub date: String,
    pub machine: &'a Machine,
    /// Load averages (1, 5, 15 min) when the scenario started and when it ended: other work on
    /// the machine shows here.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
    pub wall_seconds: f64,
    pub parameters: serde_json::Value,
    pub results: serde_json::Value,
}

pub fn write_json(path: &Path, report: &Report<'_>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// A table printed with aligned columns: the first and remark columns (no heading)
/// left-aligned, the figures right-aligned.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    pub fn note(&mut self, text: impl Into<String>) -> &mut Self {
        self.notes.push(text.into());
        self
    }

    pub fn print(&self) {
        println!("\n== {} ==", self.title);
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let width = |i: usize| {
            self.rows
                .iter()
                .chain([&self.header])
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i == 0 {
                    out.push_str(&format!("{cell:<w$}"));
                } else if self.header.get(i).is_some_and(String::is_empty) {
                    // A column without a heading holds remarks: read left to right.
                    out.push_str(&format!("  {cell:<w$}"));
                } else {
                    out.push_str(&format!("  {cell:>w$}"));
                }
            }
            out.trim_end().to_string()
        };
        println!("{}", line(&self.header));
        for r in &self.rows {
            println!("{}", line(r));
        }
        for n in &self.notes {
            println!("  {n}");
        }
    }
}

/// The `p` quantile (0..=1) of sorted durations, in milliseconds (nearest rank).
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `a / b`, or NaN when `b` is zero (serialised as null).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

/// Rounds for JSON, so files stay readable; NaN stays NaN (null in JSON).
pub fn round(v: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (v * m).round() / m
}

pub fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
