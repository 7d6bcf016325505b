//! The one place that decides how human tables look, and how they are
//! fitted to a terminal's width.
//!
//! Without a width (output piped, `COLUMNS` unset) a table is as wide as
//! its contents. Given one, a table that would be wider is fitted in
//! steps, each only if the last was not enough: headers wrap at their
//! spaces; the free-text columns (`FLEXIBLE`: examples, names, causes)
//! are cut to share what is left, no narrower than `MIN_FLEXIBLE`; then
//! columns are hidden in the order of `HIDDEN_FIRST`, with a line saying
//! which. Cells are cut, never wrapped, so an address or a name is never
//! split across lines. Only a table whose remaining columns still do not
//! fit is wrapped by comfy-table.

use super::output::Layout;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

/// Columns of free text: cut first when a table is too wide.
const FLEXIBLE: &[&str] = &[
    "example",
    "pod (name)",
    "source (name)",
    "destination (name)",
    "client (name)",
    "server (name)",
    "service (name)",
    "names",
    "error / causes",
    "pod sources",
    "note",
    "details",
    "in",
    "servers",
    "interfaces",
    "seen on",
    "tunnel",
    "tcp (opened by source)",
    "protocols",
    "subject",
    "file",
    "name",
    "capture",
    "where it died",
    "pods unmasqueraded",
    "pods SNATed",
    "egress NICs",
];

/// Columns cut at their start rather than their end: what tells two
/// files apart is the end of their path.
const CUT_AT_START: &[&str] = &["file", "capture"];

/// The narrowest a free-text column is cut to.
const MIN_FLEXIBLE: usize = 12;

/// Columns hidden, in this order, when a table does not fit even with its
/// free text cut: times and secondary counts before what a finding is.
const HIDDEN_FIRST: &[&str] = &[
    "first",
    "last",
    "capture",
    "egress NICs",
    "pods SNATed",
    "failed SYNs",
    "DNS timeouts",
    "client node",
    "server node",
    "conns",
    "span",
    "replies",
    "kind",
    "tunneled",
    "from other",
    "bytes",
    "left on",
    "refused",
    "unreachable",
    "DNS errors",
    "ClusterIP flows",
    "count",
    "packets",
    "pkts <-",
    "pkts ->",
    "state",
    "SYNs (retx)",
    "queries",
    "ports",
    "port",
    "flows",
    "class",
    "in",
    "details",
    "protocols",
    "interfaces",
    "seen on",
    "tunnel",
    "servers",
    "note",
    "example",
    "names",
    "pod sources",
    "error / causes",
];

/// Columns whose cells are a severity or a verdict: coloured on a
/// terminal.
const SEVERITY_COLUMNS: &[&str] = &["severity", "verdict"];

/// Characters a table cell shows. comfy-table measures a long cell again
/// for each line it wraps (time in the square of its length), and a crafted
/// capture can make a list in a cell thousands of entries long; JSON has it
/// whole.
const MAX_CELL_CHARS: usize = 240;

/// A table being filled: headers and rows, laid out when rendered.
pub struct Sheet {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Sheet {
    pub fn new(headers: &[&str]) -> Sheet {
        Sheet {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, each cell cut to `MAX_CELL_CHARS`.
    pub fn add_row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(clamped).collect());
    }

    /// The table as lines (no trailing newline), fitted to `layout.width`
    /// if there is one, followed by a line naming the hidden columns.
    pub fn render(&self, layout: &Layout) -> String {
        if layout.markdown {
            return self.markdown();
        }
        let plan = match layout.width {
            Some(width) => self.fit(width),
            None => Plan::whole(self.headers.len()),
        };
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        if layout.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        let shown: Vec<usize> = (0..self.headers.len())
            .filter(|&c| !plan.hidden[c])
            .collect();
        let widths = self.widths(true);
        table.set_header(shown.iter().map(|&c| {
            if plan.wrap_headers {
                let room = plan.caps[c]
                    .unwrap_or(widths[c])
                    .max(widths[c].min(MIN_FLEXIBLE));
                wrap_header(&self.headers[c], room)
            } else {
                self.headers[c].clone()
            }
        }));
        for row in &self.rows {
            table.add_row(shown.iter().map(|&c| {
                let text = row.get(c).map_or("", String::as_str);
                let text = match plan.caps[c] {
                    Some(cap) => cut(text, cap, CUT_AT_START.contains(&&*self.headers[c])),
                    None => text.to_string(),
                };
                let cell = Cell::new(&text);
                match severity_color(&self.headers[c], &text) {
                    Some(color) if layout.color => cell.fg(color),
                    _ => cell,
                }
            }));
        }
        match (layout.width, plan.overflows) {
            (Some(width), true) => {
                table
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(u16::try_from(width).unwrap_or(u16::MAX));
            }
            _ => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        let mut out = table.to_string();
        let hidden: Vec<&str> = (0..self.headers.len())
            .filter(|&c| plan.hidden[c])
            .map(|c| self.headers[c].as_str())
            .collect();
        if !hidden.is_empty() {
            out += &format!(
                "\n(too narrow for {}: widen the terminal, or see --format json)",
                hidden.join(", ")
            );
        }
        out
    }

    /// The table as GitHub-flavoured Markdown: every column, every cell
    /// (cut to `MAX_CELL_CHARS` as on a terminal), markup escaped.
    fn markdown(&self) -> String {
        let row = |cells: &mut dyn Iterator<Item = &String>| {
            let cells: Vec<String> = cells.map(|c| super::output::markdown_text(c)).collect();
            format!("| {} |", cells.join(" | "))
        };
        let mut lines = vec![row(&mut self.headers.iter())];
        lines.push(format!("|{}", "---|".repeat(self.headers.len())));
        for cells in &self.rows {
            lines.push(row(&mut cells.iter()));
        }
        lines.join("\n")
    }

    /// Characters each column needs: its widest cell and its header, or
    /// the header's longest word when headers wrap.
    fn widths(&self, wrap_headers: bool) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                let header = &self.headers[c];
                let header = if wrap_headers {
                    header.split(' ').map(chars).max().unwrap_or(0)
                } else {
                    chars(header)
                };
                let cells = self.rows.iter().map(|r| r.get(c).map_or(0, |t| chars(t)));
                cells.max().unwrap_or(0).max(header)
            })
            .collect()
    }

    /// How to lay the table out in `width` columns.
    fn fit(&self, width: usize) -> Plan {
        let n = self.headers.len();
        let mut plan = Plan::whole(n);
        let full = self.widths(false);
        if table_width(&full, &plan.hidden) <= width {
            return plan;
        }
        plan.wrap_headers = true;
        let needed = self.widths(true);
        let flexible: Vec<bool> = (self.headers.iter())
            .map(|h| FLEXIBLE.contains(&h.as_str()))
            .collect();
        let mut hide_order = HIDDEN_FIRST
            .iter()
            .flat_map(|name| (0..n).rev().filter(move |&c| self.headers[c] == *name))
            .collect::<Vec<_>>()
            .into_iter();
        loop {
            if let Some(caps) = share_flexible(&needed, &flexible, &plan.hidden, width) {
                plan.caps = caps;
                return plan;
            }
            match hide_order.next() {
                // Never the last column standing.
                Some(c) if plan.hidden.iter().filter(|h| !**h).count() > 1 => plan.hidden[c] = true,
                _ => {
                    plan.overflows = true;
                    return plan;
                }
            }
        }
    }
}

/// The layout chosen for a table.
struct Plan {
    hidden: Vec<bool>,
    /// Characters a cut column shows.
    caps: Vec<Option<usize>>,
    wrap_headers: bool,
    /// Even cut and thinned the table is too wide: comfy-table wraps it.
    overflows: bool,
}

impl Plan {
    fn whole(columns: usize) -> Plan {
        Plan {
            hidden: vec![false; columns],
            caps: vec![None; columns],
            wrap_headers: false,
            overflows: false,
        }
    }
}

/// Width of a table whose shown columns are `widths` wide: `│ a ┆ b │`.
fn table_width(widths: &[usize], hidden: &[bool]) -> usize {
    let shown = widths.iter().zip(hidden).filter(|(_, h)| !**h);
    let (sum, count) = shown.fold((0, 0), |(s, n), (w, _)| (s + w, n + 1));
    sum + 3 * count + 1
}

/// Caps for the shown flexible columns so the table fits in `width`, or
/// None when it cannot with each at least `MIN_FLEXIBLE` (or its own
/// width, if narrower). What is left is shared out narrowest first, so a
/// short column keeps its whole text.
fn share_flexible(
    widths: &[usize],
    flexible: &[bool],
    hidden: &[bool],
    width: usize,
) -> Option<Vec<Option<usize>>> {
    let mut caps = vec![None; widths.len()];
    if table_width(widths, hidden) <= width {
        return Some(caps);
    }
    let shown_flexible: Vec<usize> = (0..widths.len())
        .filter(|&c| flexible[c] && !hidden[c])
        .collect();
    let borders = 3 * hidden.iter().filter(|h| !**h).count() + 1;
    let rigid: usize = (0..widths.len())
        .filter(|&c| !flexible[c] && !hidden[c])
        .map(|c| widths[c])
        .sum();
    let mut left = width.checked_sub(borders + rigid)?;
    let mut by_width = shown_flexible.clone();
    by_width.sort_by_key(|&c| widths[c]);
    for (i, &c) in by_width.iter().enumerate() {
        let share = left / (by_width.len() - i);
        let cap = widths[c].min(share);
        if cap < widths[c].min(MIN_FLEXIBLE) {
            return None;
        }
        caps[c] = Some(cap);
        left -= cap;
    }
    Some(caps)
}

/// A header in lines of at most `room` characters, broken at spaces.
fn wrap_header(header: &str, room: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in header.split(' ') {
        match lines.last_mut() {
            Some(line) if chars(line) + 1 + chars(word) <= room => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `text` in at most `cap` characters, an ellipsis where it was cut.
fn cut(text: &str, cap: usize, at_start: bool) -> String {
    let count = chars(text);
    if count <= cap || cap == 0 {
        return text.to_string();
    }
    if at_start {
        let tail: String = text.chars().skip(count - (cap - 1)).collect();
        format!("…{tail}")
    } else {
        let head: String = text.chars().take(cap - 1).collect();
        format!("{head}…")
    }
}

/// The colour of a severity or verdict cell.
fn severity_color(header: &str, text: &str) -> Option<Color> {
    if !SEVERITY_COLUMNS.contains(&header) {
        return None;
    }
    match text {
        "failure" | "error" => Some(Color::Red),
        "warning" | "inconclusive" => Some(Color::Yellow),
        "clean" => Some(Color::Green),
        _ => None,
    }
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
mod fit_tests {
    use super::*;

    fn sheet() -> Sheet {
        let mut sheet = Sheet::new(&[
            "severity",
            "source",
            "destination",
            "first",
            "last",
            "example",
        ]);
        for i in 0..3 {
            sheet.add_row(vec![
                "failure".into(),
                format!("10.42.1.{i}"),
                "140.82.112.33".into(),
                "+1.500s".into(),
                "+28.500s".into(),
                format!("tcp 10.42.1.{i}:47598 -> 140.82.112.33:443 (syn_only, 4/0 pkts)"),
            ]);
        }
        sheet
    }

    /// The widest line of the table itself (the note under it is prose,
    /// which `output::fit_lines` wraps).
    fn widest(text: &str) -> usize {
        text.lines()
            .filter(|l| !l.starts_with('('))
            .map(chars)
            .max()
            .unwrap_or(0)
    }

    fn at(width: Option<usize>) -> String {
        sheet().render(&Layout {
            limit: 0,
            width,
            color: false,
            markdown: false,
        })
    }

    #[test]
    fn without_a_width_the_table_is_as_wide_as_its_contents() {
        let text = at(None);
        assert!(widest(&text) > 100, "{text}");
        assert!(text.contains("(syn_only, 4/0 pkts)"));
    }

    #[test]
    fn the_example_is_cut_before_any_column_is_hidden() {
        let text = at(Some(90));
        assert!(widest(&text) <= 90, "{text}");
        assert!(text.contains("first") && text.contains('…'), "{text}");
        // Addresses are whole.
        assert!(text.contains("140.82.112.33") && text.contains("10.42.1.2"));
        assert!(!text.contains("too narrow"), "{text}");
    }

    #[test]
    fn columns_are_hidden_in_order_when_cutting_is_not_enough() {
        let text = at(Some(60));
        assert!(widest(&text) <= 60, "{text}");
        assert!(text.contains("too narrow for first, last"), "{text}");
        assert!(text.contains("140.82.112.33") && text.contains("failure"));
    }

    #[test]
    fn every_width_fits() {
        for width in 20..200 {
            let text = at(Some(width));
            assert!(widest(&text) <= width, "{width}:\n{text}");
        }
    }

    #[test]
    fn headers_wrap_at_spaces_into_their_column() {
        assert_eq!(wrap_header("error / causes", 9), "error /\ncauses");
        assert_eq!(wrap_header("unanswered SYNs", 10), "unanswered\nSYNs");
        assert_eq!(wrap_header("port", 2), "port");
    }

    #[test]
    fn cuts_keep_the_end_of_a_file_name() {
        assert_eq!(cut("testdata/abc.pcap", 9, true), "…abc.pcap");
        assert_eq!(cut("abcdef", 4, false), "abc…");
        assert_eq!(cut("abc", 4, false), "abc");
    }

    #[test]
    fn severities_are_coloured_only_when_asked() {
        let layout = |color| Layout {
            limit: 0,
            width: None,
            color,
            markdown: false,
        };
        assert!(!sheet().render(&layout(false)).contains('\u{1b}'));
        assert!(sheet().render(&layout(true)).contains('\u{1b}'));
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
