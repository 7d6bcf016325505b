//! YAML documents as JSON values, so one reader serves `kubectl -o yaml`
//! and `-o json`. Built from yaml-rust2's event stream (not its tree
//! loader, whose recursion a hostile file could exhaust) with a depth
//! limit; aliases are not expanded (a dump has none, and expanding them is
//! how a small file becomes a huge one).

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Deeper than any Kubernetes object; serde_json's own limit is 128.
pub const MAX_DEPTH: usize = 128;

/// A container being built: a sequence, or a mapping and its pending key.
enum Open {
    Sequence(Vec<Value>),
    Mapping(Map<String, Value>, Option<String>),
}

/// Every document of `text`, or where and why it is not YAML.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            format!(
                "line {} column {}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        let at = || format!("line {} column {}", mark.line(), mark.col() + 1);
        let value = match event {
            Event::StreamEnd => break,
            Event::SequenceStart(..) | Event::MappingStart(..) if open.len() >= MAX_DEPTH => {
                return Err(format!("{}: nested deeper than {MAX_DEPTH} levels", at()));
            }
            Event::SequenceStart(..) => {
                open.push(Open::Sequence(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                open.push(Open::Mapping(Map::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(Open::Sequence(items)) => Value::Array(items),
                Some(Open::Mapping(map, _)) => Value::Object(map),
                None => return Err(format!("{}: a collection ends that never began", at())),
            },
            Event::Scalar(text, style, ..) => scalar(text, style),
            Event::Alias(_) => Value::Null,
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {
                continue
            }
        };
        match open.last_mut() {
            None => documents.push(value),
            Some(Open::Sequence(items)) => items.push(value),
            Some(Open::Mapping(map, key)) => match key.take() {
                None => *key = Some(key_text(value)),
                Some(key) => {
                    map.insert(key, value);
                }
            },
        }
    }
    Ok(documents)
}

/// A mapping key as a JSON key: scalars as written, anything else as JSON.
fn key_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A plain scalar is typed as YAML 1.2's core schema types it; a quoted
/// one is a string.
fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::Number(n.into());
    }
    if text.contains(|c: char| c.is_ascii_digit()) {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_become_json_values() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {a: \"1\"}\nspec:\n  hostNetwork: true\n  containers:\n  - ports:\n    - containerPort: 53\n---\nkind: List\nitems: []\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["labels"]["a"], json!("1"));
        assert_eq!(docs[0]["spec"]["hostNetwork"], json!(true));
        assert_eq!(
            docs[0]["spec"]["containers"][0]["ports"][0]["containerPort"],
            json!(53)
        );
        assert_eq!(docs[1]["items"], json!([]));
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let deep = "- ".repeat(100_000) + "x\n";
        let error = documents(&deep).unwrap_err();
        assert!(error.contains("nested deeper than 128"), "{error}");
        let flow = "[".repeat(100_000);
        assert!(documents(&flow).is_err());
    }

    #[test]
    fn aliases_are_not_expanded() {
        let text = "a: &x [1, 2]\nb: *x\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs[0]["b"], Value::Null);
    }

    #[test]
    fn broken_yaml_says_where() {
        let error = documents("a: [1, 2\n").unwrap_err();
        assert!(error.starts_with("line "), "{error}");
    }
}
