//! The one place that decides how human tables look.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

pub fn new_table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    table
}

/// Characters a table cell shows. comfy-table measures a long cell again
/// for each line it wraps (time in the square of its length), and a crafted
/// capture can make a list in a cell thousands of entries long; JSON has it
/// whole.
const MAX_CELL_CHARS: usize = 240;

/// Adds a row, each cell cut to `MAX_CELL_CHARS`.
pub fn add_row(table: &mut Table, cells: Vec<String>) {
    table.add_row(cells.into_iter().map(clamped));
}

fn clamped(text: String) -> String {
    match text.char_indices().nth(MAX_CELL_CHARS) {
        None => text,
        Some((cut, _)) => format!("{} … (cut, see --format json)", &text[..cut]),
    }
}

/// `text` with control characters escaped (`\n`, `\u{7}`), so a file
/// name with a newline cannot split a table row or forge a line.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let escaped = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod cell_tests {
    #[test]
    fn long_cells_are_cut() {
        let long = "é".repeat(1000);
        let cut = super::clamped(long);
        assert!(cut.starts_with(&"é".repeat(240)) && cut.ends_with("see --format json)"));
        assert_eq!(super::clamped("short".into()), "short");
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a.pcap"), "a.pcap");
        assert_eq!(printable("a\nb\t\u{7}.pcap"), "a\\nb\\t\\u{7}.pcap");
    }
}
