//! What commands print: human tables by default, one JSON document with `--output json`.

use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document per command (lists as arrays), for scripts.
    Json,
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

/// Prints one JSON document (pretty, one trailing newline).
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Our own types always serialise; say so rather than print nothing.
        Err(e) => eprintln!("openscm: cannot render JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
