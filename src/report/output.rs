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
}

/// What a report is in each format but JSON, whose document a command
/// puts together from its reports (`Output::document`).
pub trait Report {
    /// The human table, as printed; at most `limit` rows per table (0 =
    /// all).
    fn table(&self, limit: usize) -> String;
    /// The report's NDJSON lines, each written with `ndjson_line`.
    fn ndjson(&self, out: &mut dyn Write) -> io::Result<()>;
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

/// A run's output: reports are written as they are ready (tables and
/// NDJSON), a JSON document at the end.
pub struct Output<W: Write> {
    out: W,
    pub format: Format,
    pub limit: usize,
}

impl<W: Write> Output<W> {
    pub fn new(out: W, format: Format, limit: usize) -> Self {
        Output { out, format, limit }
    }

    /// Writes one report in the table or NDJSON format, and flushes, so a
    /// batch run shows each report as it finishes; JSON waits for the
    /// document.
    pub fn report(&mut self, report: &dyn Report) -> io::Result<()> {
        match self.format {
            Format::Table => self.out.write_all(report.table(self.limit).as_bytes())?,
            Format::Ndjson => report.ndjson(&mut self.out)?,
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

    /// Writes the run's JSON document, if the format is JSON.
    pub fn document(&mut self, schema: &'static str, body: &impl Serialize) -> io::Result<()> {
        if self.format == Format::Json {
            serde_json::to_writer_pretty(&mut self.out, &Document::new(schema, body))?;
            writeln!(self.out)?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;

    impl Report for Two {
        fn table(&self, limit: usize) -> String {
            format!("table {limit}\n")
        }
        fn ndjson(&self, out: &mut dyn Write) -> io::Result<()> {
            ndjson_line(out, &1)?;
            ndjson_line(out, &"two")
        }
    }

    fn written(format: Format) -> String {
        let mut bytes = Vec::new();
        let mut output = Output::new(&mut bytes, format, 5);
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
}
