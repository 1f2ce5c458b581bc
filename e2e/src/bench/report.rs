//! The figures of `make bench`: each with its unit, the baseline measured
//! in the same run, their ratio, and the target it is held against;
//! printed as a table and written as JSON (`bench/results.json`).

use serde_json::{Value, json};

/// What a figure must reach.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
        }
    }

    fn text(self, unit: &str) -> String {
        match self {
            Target::AtMost(t) => format!("<= {} {unit}", number(t)),
            Target::AtLeast(t) => format!(">= {} {unit}", number(t)),
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// What the figure is compared with, measured in the same run.
    pub baseline: Option<(String, f64)>,
    pub target: Option<Target>,
    /// What the reader must know to trust it (e.g. a run cut at its deadline).
    pub note: Option<String>,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &str) -> Figure {
        Figure { name: name.into(), value, unit: unit.into(), baseline: None, target: None, note: None }
    }

    pub fn baseline(mut self, name: impl Into<String>, value: f64) -> Figure {
        self.baseline = Some((name.into(), value));
        self
    }

    pub fn target(mut self, target: Target) -> Figure {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }

    /// The figure over its baseline.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().filter(|(_, b)| *b != 0.0).map(|(_, b)| self.value / b)
    }

    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| t.met(self.value))
    }

    pub fn json(&self) -> Value {
        json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline.as_ref().map(|(n, v)| json!({"name": n, "value": v})),
            "ratio": self.ratio(),
            "target": self.target.map(|t| match t {
                Target::AtMost(v) => json!({"atMost": v}),
                Target::AtLeast(v) => json!({"atLeast": v}),
            }),
            "met": self.met(),
            "note": self.note,
        })
    }
}

/// A number as people read it: no more digits than it deserves.
pub fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 || a == 0.0 => format!("{v:.2}"),
        // Three significant digits below one: 0.0123.
        a => format!("{v:.*}", (2 - a.log10().floor() as i64).clamp(2, 9) as usize),
    }
}

/// The figures as an aligned text table.
pub fn table(figures: &[Figure]) -> String {
    let rows: Vec<[String; 5]> = figures
        .iter()
        .map(|f| {
            let baseline = match &f.baseline {
                Some((n, v)) => format!("{} ({n})", number(*v)),
                None => "-".into(),
            };
            let ratio = f.ratio().map(|r| format!("{}x", number(r))).unwrap_or_else(|| "-".into());
            let target = match (f.target, f.met()) {
                (Some(t), Some(met)) => format!("{} {}", t.text(&f.unit), if met { "met" } else { "MISSED" }),
                _ => "-".into(),
            };
            [f.name.clone(), format!("{} {}", number(f.value), f.unit), baseline, ratio, target]
        })
        .collect();
    let head = ["figure", "value", "baseline", "ratio", "target"].map(String::from);
    let mut widths = head.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |r: &[String; 5]| {
        let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        cells.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&head);
    for (r, f) in rows.iter().zip(figures) {
        out.push_str(&line(r));
        if let Some(note) = &f.note {
            out.push_str(&format!("    note: {note}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_targets_and_the_table() {
        let f = Figure::new("placements/s", 2500.0, "/s")
            .baseline("store writes/s", 10_000.0)
            .target(Target::AtLeast(5000.0));
        assert_eq!(f.ratio(), Some(0.25));
        assert_eq!(f.met(), Some(false));
        let t = table(&[f.clone(), Figure::new("rss", 12.5, "MiB").note("at the end")]);
        assert!(t.contains("2500 /s   10000 (store writes/s)  0.250x  >= 5000 /s MISSED"), "{t}");
        assert!(t.contains("    note: at the end"), "{t}");
        assert_eq!(f.json()["target"]["atLeast"], 5000.0);
        assert_eq!(number(0.00712), "0.00712");
        assert_eq!(number(0.25), "0.250");
        assert_eq!(number(1234.5), "1234");
        assert_eq!(f.json()["met"], false);
    }
}
