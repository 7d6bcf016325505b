//! The one writer every command prints through: a report is laid out as a
//! human table, one JSON document, or NDJSON lines, and the format is
//! chosen here, once, for analyze, flows, scan, merge and diff alike.
//!
//! A report implements `Report` (its table and its NDJSON lines); JSON
//! documents share one envelope, `Document`: `schema` and `kpcap_version`
//! first, then the command's own fields.

use serde::Serialize;
use std::io::{self, Write};

/// How a run's report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    /// One JSON document for the whole run.
    Json,
    /// One JSON value per line.
    Ndjson,
    /// GitHub-flavoured Markdown: the human report, for a ticket.
    Markdown,
    /// One self-contained HTML page for the whole run (`report::html`).
    Html,
}

/// How human tables are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// Rows per table at most (0 = all).
    pub limit: usize,
    /// Columns to fit in (a terminal's, or `COLUMNS`); None: as wide as
    /// the contents, prose wrapped at `PROSE_WIDTH`.
    pub width: Option<usize>,
    /// Severities in colour (ANSI escapes).
    pub color: bool,
    /// Markdown instead of a terminal's text: headings, pipe tables,
    /// lists (`Format::Markdown`).
    pub markdown: bool,
}

/// Where prose wraps when no width is given.
pub const PROSE_WIDTH: usize = 100;

impl Layout {
    /// This layout for Markdown: no width, no colour.
    pub fn as_markdown(&self) -> Layout {
        Layout {
            width: None,
            color: false,
            markdown: true,
            ..*self
        }
    }

    /// The width prose is wrapped at.
    pub fn prose_width(&self) -> usize {
        self.width.unwrap_or(PROSE_WIDTH)
    }
}

/// What a report is in each format but JSON, whose document a command
/// puts together from its reports (`Output::document`).
pub trait Report {
    /// The human table, as printed, laid out by `layout`.
    fn table(&self, layout: &Layout) -> String;
    /// The report's NDJSON lines, each written with `ndjson_line`.
    fn ndjson(&self, out: &mut dyn Write) -> io::Result<()>;

    /// The report's part of an HTML page: its Markdown, rendered.
    fn html(&self, layout: &Layout) -> String {
        super::html::from_markdown(&self.table(&layout.as_markdown()))
    }
}

/// Writes `value` as one compact JSON line.
pub fn ndjson_line(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

/// The envelope of every JSON document kpcap writes.
#[derive(Debug, Serialize)]
pub struct Document<'a, B: Serialize> {
    pub schema: &'static str,
    pub kpcap_version: &'static str,
    #[serde(flatten)]
    pub body: &'a B,
}

impl<'a, B: Serialize> Document<'a, B> {
    pub fn new(schema: &'static str, body: &'a B) -> Self {
        Document {
            schema,
            kpcap_version: env!("CARGO_PKG_VERSION"),
            body,
        }
    }
}

/// Bytes of JSON gathered before they go to the writer.
const JSON_BUFFER: usize = 1 << 20;

/// A run's output: reports are written as they are ready (tables and
/// NDJSON), a JSON document at the end.
pub struct Output<W: Write> {
    out: W,
    pub format: Format,
    pub layout: Layout,
    /// The page's parts so far (`Format::Html`), written by `document`.
    html: String,
}

impl<W: Write> Output<W> {
    pub fn new(out: W, format: Format, layout: Layout) -> Self {
        Output {
            out,
            format,
            layout,
            html: String::new(),
        }
    }

    /// Writes one report in the table or NDJSON format, and flushes, so a
    /// batch run shows each report as it finishes; JSON waits for the
    /// document.
    pub fn report(&mut self, report: &dyn Report) -> io::Result<()> {
        match self.format {
            Format::Table => {
                let text = report.table(&self.layout);
                let text = match self.layout.width {
                    Some(width) => fit_lines(&text, width),
                    None => text,
                };
                self.out.write_all(text.as_bytes())?
            }
            Format::Ndjson => report.ndjson(&mut self.out)?,
            Format::Markdown => {
                let layout = self.layout.as_markdown();
                self.out.write_all(report.table(&layout).as_bytes())?
            }
            Format::Html => {
                self.html.push_str(&report.html(&self.layout));
                return Ok(());
            }
            Format::Json => return Ok(()),
        }
        self.out.flush()
    }

    /// Writes `line` now when the format is NDJSON (a scan's file lines,
    /// as each file finishes).
    pub fn stream(&mut self, line: &impl Serialize) -> io::Result<()> {
        if self.format != Format::Ndjson {
            return Ok(());
        }
        ndjson_line(&mut self.out, line)?;
        self.out.flush()
    }

    /// The writer, to finish with.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the run's JSON document, if the format is JSON.
    pub fn document(&mut self, schema: &'static str, body: &impl Serialize) -> io::Result<()> {
        if self.format == Format::Html {
            let title = format!("kpcap {}", schema.trim_start_matches("kpcap."));
            let title = title.split('/').next().unwrap_or("kpcap").to_string();
            let page = super::html::page(&title, &std::mem::take(&mut self.html));
            self.out.write_all(page.as_bytes())?;
        }
        if self.format == Format::Json {
            // serde_json writes a document in pieces of a few bytes: into
            // a buffer of its own, each is a copy, not a call through
            // the writer's dispatch.
            let mut out = io::BufWriter::with_capacity(JSON_BUFFER, &mut self.out);
            super::pretty::to_writer(&mut out, &Document::new(schema, body))?;
            writeln!(out)?;
            out.flush()?;
        }
        self.out.flush()
    }
}

/// A section's title: a line of its own on a terminal, a heading in
/// Markdown.
pub fn title(text: &str, layout: &Layout) -> String {
    if layout.markdown {
        format!("\n### {}\n\n", markdown_text(text))
    } else {
        format!("\n{text}\n")
    }
}

/// One line of a list: indented on a terminal, a Markdown list item.
pub fn item(text: &str, layout: &Layout) -> String {
    if layout.markdown {
        format!("- {}\n", markdown_text(text))
    } else {
        format!("  {text}\n")
    }
}

/// What a report opens with: `lines` of `key      value` fields; in
/// Markdown under a heading, `heading`, as a list.
pub fn opening(heading: &str, lines: &str, layout: &Layout) -> String {
    let mut out = String::new();
    if layout.markdown {
        out += &format!("## {}\n\n", markdown_text(heading));
    }
    out + &fields(lines, layout)
}

/// Lines of `key      value` fields (a header, coverage): as they are on
/// a terminal, a list with the keys in bold in Markdown.
pub fn fields(text: &str, layout: &Layout) -> String {
    if !layout.markdown {
        return text.to_string();
    }
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        match (
            line.starts_with(' '),
            trimmed.split_once(char::is_whitespace),
        ) {
            (true, _) => out += &format!("  {}\n", markdown_text(trimmed)),
            (false, Some((key, value))) => {
                out += &format!(
                    "- **{}** {}\n",
                    markdown_text(key),
                    markdown_text(value.trim_start())
                )
            }
            (false, None) if !trimmed.is_empty() => {
                out += &format!("- {}\n", markdown_text(trimmed))
            }
            _ => out.push('\n'),
        }
    }
    out
}

/// `text` with what Markdown would read as markup escaped: it is shown
/// as written.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    // Only whitespace before this char; and, after the leading whitespace,
    // only ASCII digits (at least one).
    let (mut leading, mut digits) = (true, false);
    for (i, &c) in chars.iter().enumerate() {
        let word = |at: Option<&char>| at.is_some_and(|c| c.is_alphanumeric());
        // `_` inside a word (`no_reply`) is no emphasis in GitHub's
        // Markdown; `#`, `>`, `-`, `+`, `=` only mean something at the
        // start of a line, as does `1.` (`1)`), a list.
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '|' | '<' | '&' => true,
            '_' => !(i > 0 && word(chars.get(i - 1)) && word(chars.get(i + 1))),
            '#' | '>' | '-' | '+' | '=' => leading,
            '.' | ')' => digits,
            _ => false,
        };
        match c {
            '\n' | '\r' => out.push(' '),
            _ if escape => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        digits = c.is_ascii_digit() && (leading || digits);
        leading &= c.is_whitespace();
    }
    out
}

/// `text` with every line wider than `width` wrapped at its spaces, its
/// continuation lines indented under where its text began (`cidrs     `
/// lines under their value). Table lines, already fitted, and words
/// longer than a line are left whole: an address is never split.
pub fn fit_lines(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if visible_width(body) <= width || body.starts_with(TABLE_EDGES) {
            out += line;
            continue;
        }
        let indent = " ".repeat(hanging_indent(body));
        let mut column = 0;
        let mut line_has_word = false;
        for (piece, spaced) in pieces(body, width.saturating_sub(indent.len())) {
            let piece_width = visible_width(piece);
            let gap = usize::from(spaced);
            if !piece.is_empty() && line_has_word && column + gap + piece_width > width {
                out.push('\n');
                out += &indent;
                column = indent.len();
            } else if spaced {
                out.push(' ');
                column += 1;
            }
            out += piece;
            column += piece_width;
            line_has_word |= !piece.is_empty();
        }
        out += newline;
    }
    out
}

/// A line's words, each with whether a space precedes it. Split at
/// single spaces, which keeps a line's own runs of spaces; a word wider
/// than `room` (a comma-separated list) is split after its commas too,
/// which no address or name contains.
fn pieces(line: &str, room: usize) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    for (i, word) in line.split(' ').enumerate() {
        if visible_width(word) <= room {
            out.push((word, i > 0));
            continue;
        }
        for (j, part) in word.split_inclusive(',').enumerate() {
            out.push((part, i > 0 && j == 0));
        }
    }
    out
}

/// The first characters of a table's lines.
const TABLE_EDGES: &[char] = &['┌', '│', '╞', '├', '└', '╭', '╰'];

/// Where a wrapped line's continuation starts: under the value of a
/// `key   value` line, else two past the line's own indent.
fn hanging_indent(line: &str) -> usize {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[lead..];
    if let Some(key_end) = rest.find("  ") {
        let value = key_end + rest[key_end..].len() - rest[key_end..].trim_start().len();
        if lead == 0 && value <= 12 && !rest[..key_end].contains(' ') {
            return value;
        }
    }
    lead + 2
}

/// Characters a terminal shows for `text`: ANSI colour escapes take none.
pub fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            width += 1;
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;

    impl Report for Two {
        fn table(&self, layout: &Layout) -> String {
            format!("table {}\n", layout.limit)
        }
        fn ndjson(&self, out: &mut dyn Write) -> io::Result<()> {
            ndjson_line(out, &1)?;
            ndjson_line(out, &"two")
        }
    }

    fn written(format: Format) -> String {
        let mut bytes = Vec::new();
        let layout = Layout {
            limit: 5,
            ..Layout::default()
        };
        let mut output = Output::new(&mut bytes, format, layout);
        output.report(&Two).unwrap();
        output.report(&Two).unwrap();
        output
            .document("kpcap.test/1", &serde_json::json!({"n": 2}))
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn each_format_writes_only_its_own_form() {
        assert_eq!(written(Format::Table), "table 5\ntable 5\n");
        assert_eq!(written(Format::Ndjson), "1\n\"two\"\n1\n\"two\"\n");
        let json: serde_json::Value = serde_json::from_str(&written(Format::Json)).unwrap();
        assert_eq!(json["schema"], "kpcap.test/1");
        assert_eq!(json["kpcap_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["n"], 2);
    }

    #[test]
    fn the_envelope_comes_first() {
        #[derive(Serialize)]
        struct Body {
            a: u8,
        }
        let text = serde_json::to_string(&Document::new("s/1", &Body { a: 1 })).unwrap();
        assert!(
            text.starts_with(r#"{"schema":"s/1","kpcap_version":""#),
            "{text}"
        );
        assert!(text.ends_with(r#","a":1}"#), "{text}");
    }

    #[test]
    fn long_lines_wrap_at_spaces_under_their_value() {
        let line =
            "cidrs     pod 10.42.0.0/16; service 10.43.0.0/16; node 10.50.10.0/24 (preset k3s)\n";
        let fitted = fit_lines(line, 40);
        assert!(fitted.lines().all(|l| l.len() <= 40), "{fitted}");
        assert!(fitted.contains("\n          10.43.0.0/16;"), "{fitted}");
        assert_eq!(fitted.replace("\n          ", " "), line);
        // Indented prose keeps its indent, plus two.
        let prose = fit_lines("  - one two three four five six\n", 14);
        assert_eq!(prose, "  - one two\n    three four\n    five six\n");
    }

    #[test]
    fn table_lines_and_long_words_stay_whole() {
        let table = "│ a ┆ b │ and much more text than fits\n";
        assert_eq!(fit_lines(table, 10), table);
        let word = "x 10.42.1.17:53421->1.1.1.1:53\n";
        assert_eq!(fit_lines(word, 10), "x\n  10.42.1.17:53421->1.1.1.1:53\n");
        let list = "files (a/b.pcap,c/d.pcap,e/f.pcap)\n";
        assert_eq!(
            fit_lines(list, 20),
            "files (a/b.pcap,\n  c/d.pcap,e/f.pcap)\n"
        );
        assert_eq!(visible_width("\u{1b}[31mfailure\u{1b}[0m"), 7);
    }
}

#[cfg(test)]
mod markdown_tests {
    use super::*;
    use proptest::prelude::*;

    /// `text` as Markdown escaped and rendered to HTML, and the text the
    /// HTML shows (tags dropped, entities decoded).
    fn rendered(text: &str) -> (String, String) {
        let markdown = format!(
            "| a |\n|---|\n| {} |\n\n- {}\n",
            markdown_text(text),
            markdown_text(text)
        );
        let mut html = String::new();
        let parser =
            pulldown_cmark::Parser::new_ext(&markdown, pulldown_cmark::Options::ENABLE_TABLES);
        pulldown_cmark::html::push_html(&mut html, parser);
        let mut shown = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => shown.push(c),
                _ => {}
            }
        }
        let shown = shown
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        (html, shown)
    }

    proptest! {
        /// Whatever a capture puts in a name (a DNS question, an
        /// interface), a Markdown report shows it as text: no tag, link
        /// or emphasis of its own, in a table cell and in a list item.
        #[test]
        fn cells_and_items_show_any_text_as_written(text in "[a-z0-9 <>&;\"'`*_\\[\\]()|#!+=\\\\:/.-]{0,40}") {
            let (html, shown) = rendered(&text);
            let tags: Vec<&str> = html.split('<').skip(1).map(|t| t.split(['>', ' ']).next().unwrap_or("")).collect();
            for tag in tags {
                let allowed = ["table", "/table", "thead", "/thead", "tbody", "/tbody", "tr", "/tr",
                    "th", "/th", "td", "/td", "ul", "/ul", "li", "/li"];
                prop_assert!(allowed.contains(&tag), "tag <{}> in {}", tag, html);
            }
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if !flat.is_empty() {
                prop_assert!(shown.split_whitespace().collect::<Vec<_>>().join(" ").contains(&flat), "{:?} shown as {:?}", flat, shown);
            }
        }
    }

    #[test]
    fn a_script_in_a_dns_name_stays_text() {
        let (html, _) = rendered("<script>alert(1)</script>.evil.example");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.evil.example"),
            "{html}"
        );
    }
}
