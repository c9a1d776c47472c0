//! What the subcommands print: one table layout for every view, kubectl-like ages, and
//! the `-o table|json|yaml` choice. `watch` draws `kubectl get`/`describe` of a watch
//! (`check`, `demo`), `device` one device report (`evaluate`).

pub(crate) mod device;
pub(crate) mod watch;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// `-o` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// `value` in the chosen format: the table view, pretty JSON (with a final newline) or
/// YAML.
pub(crate) fn output<T: Serialize>(
    value: &T,
    format: OutputFormat,
    table: impl FnOnce(&T) -> String,
) -> Result<String, String> {
    match format {
        OutputFormat::Table => Ok(table(value)),
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string()),
        OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(|e| e.to_string()),
    }
}

/// How a table is laid out: every line prefixed with `indent`, columns `gap` spaces
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) indent: &'static str,
    pub(crate) gap: usize,
}

impl Layout {
    /// Left-aligned columns; the last one is not padded so long messages just run on,
    /// and no line ends in spaces.
    pub(crate) fn table(self, headers: &[&str], rows: Vec<Vec<String>>) -> String {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header_row).chain(rows.iter()) {
            let last = row.len().saturating_sub(1);
            let mut line = String::from(self.indent);
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i != last {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(&" ".repeat(pad + self.gap));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// kubectl's short age: `45s`, `3m12s`, `2h5m`, `4d`.
pub(crate) fn short_age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(then).max(SignedDuration::ZERO).as_secs();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = at("2026-01-02T00:00:00Z");
        assert_eq!(short_age(at("2026-01-01T23:59:15Z"), now), "45s");
        assert_eq!(short_age(at("2026-01-01T23:56:48Z"), now), "3m12s");
        assert_eq!(short_age(at("2026-01-01T22:00:00Z"), now), "120m");
        assert_eq!(short_age(at("2026-01-01T19:55:00Z"), now), "4h5m");
        assert_eq!(short_age(at("2025-12-29T00:00:00Z"), now), "4d");
        // A clock behind the object never shows a negative age.
        assert_eq!(short_age(at("2026-01-02T00:01:00Z"), now), "0s");
    }

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let rows = || {
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ]
        };
        let describe = Layout {
            indent: "  ",
            gap: 3,
        };
        assert_eq!(
            describe.table(&["A", "BB"], rows()),
            "  A      BB\n  long   x\n  s      y\n"
        );
        let device = Layout { indent: "", gap: 2 };
        assert_eq!(
            device.table(&["A", "BB"], rows()),
            "A     BB\nlong  x\ns     y\n"
        );
    }

    #[test]
    fn an_empty_last_cell_leaves_no_trailing_spaces() {
        let layout = Layout { indent: "", gap: 2 };
        let text = layout.table(&["A", "B"], vec![vec!["x".into(), String::new()]]);
        assert_eq!(text, "A  B\nx\n");
    }
}
