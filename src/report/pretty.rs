//! serde_json's pretty layout (two spaces a level), written in fewer
//! pieces: `PrettyFormatter` writes a line break, then the indentation a
//! level at a time, each a call through the writer, and a report of tens
//! of thousands of flows is mostly such lines. Here a line break and its
//! indentation are one write. The bytes are the same as `PrettyFormatter`'s
//! (tested against it).

use serde_json::ser::Formatter;
use std::io;

/// Levels one write indents to; deeper ones take more writes.
const LEVELS: usize = 32;

/// A comma, a line break and enough spaces for `LEVELS` levels.
const BREAK: [u8; 2 + 2 * LEVELS] = {
    let mut bytes = [b' '; 2 + 2 * LEVELS];
    bytes[0] = b',';
    bytes[1] = b'\n';
    bytes
};

#[derive(Debug, Default)]
pub struct Pretty {
    level: usize,
    has_value: bool,
}

impl Pretty {
    /// A line break (after a comma unless `first`) and the current
    /// indentation.
    #[inline]
    fn line<W: ?Sized + io::Write>(&self, writer: &mut W, comma: bool) -> io::Result<()> {
        let start = if comma { 0 } else { 1 };
        let (whole, rest) = (self.level.min(LEVELS), self.level.saturating_sub(LEVELS));
        writer.write_all(&BREAK[start..2 + 2 * whole])?;
        for _ in 0..rest {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    #[inline]
    fn open<W: ?Sized + io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    #[inline]
    fn end<W: ?Sized + io::Write>(&mut self, writer: &mut W, close: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.line(writer, false)?;
        }
        writer.write_all(close)
    }
}

impl Formatter for Pretty {
    #[inline]
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    #[inline]
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"]")
    }

    #[inline]
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.line(writer, !first)
    }

    #[inline]
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    #[inline]
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    #[inline]
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"}")
    }

    #[inline]
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.line(writer, !first)
    }

    #[inline]
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    #[inline]
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `value` as `serde_json::to_writer_pretty` writes it.
pub fn to_writer<W: io::Write, T: ?Sized + serde::Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, Pretty::default());
    value.serialize(&mut serializer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Nested deeper than one write indents, empty and full arrays and
    /// objects, strings to escape: the same bytes as serde_json's own.
    #[test]
    fn writes_what_serde_json_pretty_writes() {
        let mut deep = json!({"leaf": [1, {"a": null}], "empty": {}, "none": []});
        for level in 0..40 {
            deep = json!({ format!("level {level}"): [deep, level, "a \"quoted\"\n line"] });
        }
        let values = [
            deep,
            json!([]),
            json!({}),
            json!([[], {}, [[]], [{}]]),
            json!("plain"),
            json!({"a": {"b": {"c": [true, false, 1.5, -2]}}}),
        ];
        for value in values {
            let mut ours = Vec::new();
            super::to_writer(&mut ours, &value).unwrap();
            let theirs = serde_json::to_vec_pretty(&value).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
