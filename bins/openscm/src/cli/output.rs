//! What every command prints (client and `admin` alike): one convention.
//!
//! - **A table by default**, for people, whether stdout is a terminal or not: aligned columns, or
//!   FIELD/VALUE rows for one object. A command whose result is a file's content (`csr key`,
//!   `ca root`, `openapi`, `completions`) prints that content instead.
//! - **`-o json`** (`--output json`, on every client and admin command): one JSON document on
//!   stdout, a list as an array, for scripts. A failure prints `{"error": {...}}` there too.
//! - **Notes go to stderr** (a page shorter than the total, "10 of 11 certificates"; progress
//!   bars; bulk summaries; failures), so that stdout stays one table or one JSON document.
//! - **Times**: readable UTC in tables (`2026-01-31 12:00:00 UTC`); RFC 3339 UTC in JSON
//!   (`2026-01-31T12:00:00Z`, with a fraction only when the time has milliseconds). The API's
//!   own time fields (`YYYY-MM-DD HH:MM:SS.0` strings in UTC, and millisecond epochs, as number
//!   or string) are turned into RFC 3339 in the JSON the client prints ([`TIME_KEYS`]); any
//!   other form (another server's) is left as it came.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document per command (lists as arrays), for scripts.
    Json,
}

/// `-o/--output` of a command tree (global: it may come after any subcommand).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArg {
    /// Output: table (for people) or json (one document, for scripts).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

/// The keys whose values are times in the API's documents (and in ours).
pub const TIME_KEYS: &[&str] = &[
    "issue_time",
    "not_before",
    "not_after",
    "expire_time",
    "renew_at",
    "time",
    "delivered_at",
    "verified_at",
    "drift_at",
    "checked_at",
    "push_time",
    "create_time",
    "update_time",
    "expired_time",
    "cert_issued_time",
    "expires_at",
    "issued_at",
];

/// A time as the API or the store gives it: `YYYY-MM-DD HH:MM:SS[.f]` (UTC), RFC 3339, or a
/// millisecond epoch (digits). `None` for anything else.
fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) {
        return from_ms(s.parse().ok()?);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let api = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(s, api)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

fn from_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn readable(t: OffsetDateTime) -> Option<String> {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .ok()
}

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
}

/// A time for a table cell: readable UTC; what cannot be read as a time is shown as it is.
pub fn when(s: &str) -> String {
    parse_time(s)
        .and_then(readable)
        .unwrap_or_else(|| s.to_owned())
}

/// [`when`] of an optional time (empty when absent).
pub fn when_opt(s: Option<&str>) -> String {
    s.map(when).unwrap_or_default()
}

/// A millisecond epoch for a table cell.
pub fn when_ms(ms: i64) -> String {
    from_ms(ms)
        .and_then(readable)
        .unwrap_or_else(|| ms.to_string())
}

/// A millisecond epoch for JSON: RFC 3339 UTC.
pub fn json_ms(ms: i64) -> String {
    from_ms(ms)
        .and_then(rfc3339)
        .unwrap_or_else(|| ms.to_string())
}

/// Turns the values of [`TIME_KEYS`] anywhere in `v` into RFC 3339 (those that read as times).
pub fn json_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if TIME_KEYS.contains(&k.as_str()) {
                    let t = match &*x {
                        serde_json::Value::String(s) => parse_time(s),
                        serde_json::Value::Number(n) => n.as_i64().and_then(from_ms),
                        _ => None,
                    };
                    if let Some(text) = t.and_then(rfc3339) {
                        *x = serde_json::Value::String(text);
                    }
                } else {
                    json_times(x);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json_times),
        _ => {}
    }
}

/// A table: a header row and rows of cells, rendered with columns padded to their widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra cells dropped).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The text: columns separated by two spaces, no trailing blanks; a control character in a
    /// cell (a newline from the server) is shown as a space so that rows stay rows.
    pub fn render(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        let header: Vec<String> = self.header.iter().map(|h| clean(h)).collect();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| clean(c)).collect())
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(cell.chars().count()),
                ));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Two columns, field and value, for one object; `None` values are left out.
pub fn fields(pairs: &[(&str, Option<String>)]) -> Table {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    for (k, v) in pairs {
        if let Some(v) = v {
            t.row([(*k).to_owned(), v.clone()]);
        }
    }
    t
}

/// Prints `value` as JSON, or `table` for people.
pub fn print<T: Serialize>(format: Format, value: &T, table: impl FnOnce() -> Table) {
    match format {
        Format::Json => print_json(value),
        Format::Table => print!("{}", table().render()),
    }
}

/// Prints one JSON document (pretty, one trailing newline), its times in RFC 3339.
pub fn print_json<T: Serialize>(value: &T) {
    let rendered = serde_json::to_value(value).and_then(|mut v| {
        json_times(&mut v);
        serde_json::to_string_pretty(&v)
    });
    match rendered {
        Ok(text) => println!("{text}"),
        // Our own types always serialise; say so rather than print nothing.
        Err(e) => eprintln!("openscm: cannot render JSON: {e}"),
    }
}

/// Says on stderr that a list shows `shown` of `total` items, and how to see the rest; nothing
/// when it shows them all.
pub fn note_partial(shown: usize, offset: u64, total: u64, what: &str) {
    if let Some(note) = partial_note(shown, offset, total, what) {
        eprintln!("{note}");
    }
}

fn partial_note(shown: usize, offset: u64, total: u64, what: &str) -> Option<String> {
    let shown = shown as u64;
    if offset == 0 && shown >= total {
        return None;
    }
    let mut note = if shown == 0 {
        format!("openscm: none of {total} {what} past --offset {offset}")
    } else if offset == 0 {
        format!("openscm: {shown} of {total} {what}")
    } else {
        format!(
            "openscm: {what} {} to {} of {total}",
            offset + 1,
            offset + shown
        )
    };
    if shown > 0 && offset + shown < total {
        note.push_str(&format!(
            "; --all for every one, or --offset {} for the next page",
            offset + shown
        ));
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_every_form_the_api_uses() {
        for s in [
            "2026-01-31 12:00:00.0",
            "2026-01-31 12:00:00",
            "2026-01-31T12:00:00Z",
            "2026-01-31T20:00:00+08:00",
            "1769860800000",
        ] {
            assert_eq!(when(s), "2026-01-31 12:00:00 UTC", "{s}");
        }
        assert_eq!(when("next tuesday"), "next tuesday");
        assert_eq!(when_ms(1_769_860_800_123), "2026-01-31 12:00:00 UTC");
        assert_eq!(json_ms(1_769_860_800_000), "2026-01-31T12:00:00Z");
        assert_eq!(json_ms(1_769_860_800_123), "2026-01-31T12:00:00.123Z");
    }

    #[test]
    fn json_times_become_rfc3339_where_they_are_times() {
        let mut v = serde_json::json!({
            "id": "scs1",
            "not_after": "2026-01-31 12:00:00.0",
            "expire_time": null,
            "name": "2026-01-31 12:00:00.0",
            "push_history_list": [{"push_time": "1769860800000"}],
            "csr_list": [{"create_time": 1_769_860_800_000_i64}],
            "events": [{"time": "not a time"}],
        });
        json_times(&mut v);
        assert_eq!(v["not_after"], "2026-01-31T12:00:00Z");
        assert_eq!(v["expire_time"], serde_json::Value::Null);
        assert_eq!(v["name"], "2026-01-31 12:00:00.0", "not a time key");
        assert_eq!(
            v["push_history_list"][0]["push_time"],
            "2026-01-31T12:00:00Z"
        );
        assert_eq!(v["csr_list"][0]["create_time"], "2026-01-31T12:00:00Z");
        assert_eq!(v["events"][0]["time"], "not a time");
    }

    #[test]
    fn a_partial_page_says_how_many_and_how_to_see_the_rest() {
        assert_eq!(partial_note(10, 0, 10, "certificates"), None);
        assert_eq!(
            partial_note(10, 0, 11, "certificates").unwrap(),
            "openscm: 10 of 11 certificates; --all for every one, or --offset 10 for the next page"
        );
        assert_eq!(
            partial_note(1, 10, 11, "certificates").unwrap(),
            "openscm: certificates 11 to 11 of 11"
        );
        assert_eq!(
            partial_note(5, 10, 30, "CSRs").unwrap(),
            "openscm: CSRs 11 to 15 of 30; --all for every one, or --offset 15 for the next page"
        );
        assert_eq!(
            partial_note(0, 20, 11, "CSRs").unwrap(),
            "openscm: none of 11 CSRs past --offset 20"
        );
    }

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let mut t = Table::new(&["ID", "NAME", "STATUS"]);
        t.row(["scs1", "www.shop.test", "ISSUED"]);
        t.row(["scs22", "a", ""]);
        t.row(["x"]);
        assert_eq!(
            t.render(),
            "ID     NAME           STATUS\n\
             scs1   www.shop.test  ISSUED\n\
             scs22  a\n\
             x\n"
        );
    }

    #[test]
    fn control_characters_do_not_break_rows() {
        let mut t = Table::new(&["A", "B"]);
        t.row(["two\nlines", "tab\there"]);
        assert_eq!(t.render(), "A          B\ntwo lines  tab here\n");
    }

    #[test]
    fn field_tables_leave_out_missing_values() {
        let t = fields(&[
            ("id", Some("scs1".into())),
            ("sans", None),
            ("status", Some("PAID".into())),
        ]);
        assert_eq!(t.render(), "FIELD   VALUE\nid      scs1\nstatus  PAID\n");
    }
}
