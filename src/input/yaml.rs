//! YAML documents as a tree that remembers where every node came from.
//!
//! Registrations and bridge configs are read leniently: we want every
//! problem in a file with its line and column, not only the first one a
//! strict `Deserialize` would stop at, and we must keep keys we do not know
//! (unstable MSC flags). So files are parsed once into [`Node`]s carrying
//! their [`Pos`], and the typed views (registration, bridge config) walk it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column of a node in its file (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in file order; YAML keys that are not strings are rendered to text.
    Map(Vec<(String, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a dotted path of map keys (`appservice.bot.username`).
    pub fn path(&self, dotted: &str) -> Option<&Node> {
        dotted.split('.').try_fold(self, |node, key| node.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// What kind of YAML value this is, for messages ("expected a string, found a list").
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The same data, wherever it sits in its file and in whatever key order
    /// (a copy of a file, re-indented or with other comments, is the same).
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(key, x)| other.get(key).is_some_and(|y| x.same_value(y)))
            }
            (a, b) => a == b,
        }
    }

    /// The scalar as text the way a human wrote it; `None` for lists and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Null => Some(String::new()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// A parsed YAML file.
#[derive(Clone, Debug)]
pub struct Document {
    pub path: PathBuf,
    pub root: Node,
}

/// Why a YAML file could not be turned into a [`Document`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{path}: cannot read the file: {source}. Check the path and that this user may read it."
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{pos}: not valid YAML: {message}. Fix the syntax at that line (indentation and quoting are the usual causes)."
    )]
    Invalid {
        path: PathBuf,
        pos: Pos,
        message: String,
    },
}

impl Document {
    pub fn load(path: &Path) -> Result<Document, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Document::parse(path, &text)
    }

    /// Parses `text`; its secret values join the hunt of every output
    /// first, also when it does not parse (`input::secrets`).
    pub fn parse(path: &Path, text: &str) -> Result<Document, LoadError> {
        crate::input::secrets::remember_secrets_in(text);
        let root = if text.trim().is_empty() {
            Node {
                value: Value::Null,
                pos: Pos { line: 1, column: 1 },
            }
        } else {
            let spanned: Spanned<Value> = serde_saphyr::from_str(text).map_err(|err| {
                let pos = err
                    .location()
                    .map(|loc| Pos {
                        line: loc.line(),
                        column: loc.column(),
                    })
                    .unwrap_or_default();
                LoadError::Invalid {
                    path: path.to_owned(),
                    pos,
                    message: first_line(&err.to_string()),
                }
            })?;
            node_from(spanned)
        };
        Ok(Document {
            path: path.to_owned(),
            root,
        })
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

fn node_from(spanned: Spanned<Value>) -> Node {
    Node {
        value: spanned.value,
        pos: Pos {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        },
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node_from(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            let key = node_from(key).scalar_text().unwrap_or_default();
            entries.push((key, node_from(value)));
        }
        Ok(Value::Map(entries))
    }
}

/// Byte range, within `text`, of the scalar that starts at `pos`, quotes
/// included. `value` (the parsed text) lets a plain scalar inside a flow
/// mapping end where it ends rather than at the end of the line.
pub fn scalar_span(text: &str, pos: Pos, value: Option<&str>) -> Option<std::ops::Range<usize>> {
    let line_index = usize::try_from(pos.line).ok()?.checked_sub(1)?;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line_index)
        .map(str::len)
        .sum();
    let line = text[line_start..].split_inclusive('\n').next()?;
    let column = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let start = line.char_indices().nth(column)?.0;
    let rest = line[start..].trim_end_matches(['\n', '\r']);
    let length = match rest.chars().next() {
        Some('"') => closing_double_quote(&rest[1..])? + 2,
        Some('\'') => rest[1..].find('\'').map(|i| i + 2)?,
        _ => match value {
            Some(value) if !value.is_empty() && rest.starts_with(value) => value.len(),
            _ => rest
                .find(" #")
                .unwrap_or(rest.len())
                .min(rest.trim_end().len()),
        },
    };
    Some(line_start + start..line_start + start + length)
}

fn closing_double_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// `text` with the scalar at `pos` replaced by `replacement` (written as is:
/// the caller quotes it), keeping indentation and trailing comments.
pub fn replace_scalar(
    text: &str,
    pos: Pos,
    value: Option<&str>,
    replacement: &str,
) -> Option<String> {
    let span = scalar_span(text, pos, value)?;
    Some(format!(
        "{}{replacement}{}",
        &text[..span.start],
        &text[span.end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, LoadError> {
        Document::parse(Path::new("t.yaml"), text)
    }

    #[test]
    fn same_value_ignores_positions_key_order_and_comments() {
        let a = parse("id: x\nnamespaces:\n  users: [{regex: 'a', exclusive: true}]\n").unwrap();
        let b = parse(
            "# copy\nnamespaces:\n    users:\n      - exclusive: true\n        regex: a\nid: x\n",
        )
        .unwrap();
        let c = parse("id: x\nnamespaces:\n  users: [{regex: 'b', exclusive: true}]\n").unwrap();
        assert!(a.root.same_value(&b.root));
        assert!(!a.root.same_value(&c.root));
    }

    #[test]
    fn keeps_positions_and_types() {
        let doc = parse("a:\n  b: \"false\"\n  c: true\n  d: [1, x]\n  e:\n").unwrap();
        let b = doc.root.path("a.b").unwrap();
        assert_eq!(b.as_str(), Some("false"));
        assert_eq!(b.pos, Pos { line: 2, column: 6 });
        assert_eq!(doc.root.path("a.c").unwrap().as_bool(), Some(true));
        assert_eq!(doc.root.path("a.d").unwrap().items().len(), 2);
        assert!(doc.root.path("a.e").unwrap().is_null());
    }

    #[test]
    fn broken_yaml_names_file_line_and_column() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.yaml:"), "{text}");
        match err {
            LoadError::Invalid { pos, .. } => assert!(pos.line >= 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn replaces_quoted_and_plain_scalars_keeping_comments() {
        let text = "a:\n  t: \"old value\" # keep\n  u: plain # also\n";
        let out = replace_scalar(text, Pos { line: 2, column: 6 }, None, "\"NEW\"").unwrap();
        assert_eq!(out, "a:\n  t: \"NEW\" # keep\n  u: plain # also\n");
        let out = replace_scalar(&out, Pos { line: 3, column: 6 }, Some("plain"), "\"X\"").unwrap();
        assert!(out.ends_with("  u: \"X\" # also\n"), "{out}");
    }

    #[test]
    fn scalar_span_in_flow_mapping_and_escaped_quotes() {
        let text = "a: {password: hunter2, user: bob}\nb: \"x\\\"y\" # c\n";
        let doc = Document::parse(Path::new("t.yaml"), text).unwrap();
        let node = doc.root.path("a.password").unwrap();
        let span = scalar_span(text, node.pos, node.as_str()).unwrap();
        assert_eq!(&text[span], "hunter2");
        let node = doc.root.get("b").unwrap();
        assert_eq!(
            &text[scalar_span(text, node.pos, node.as_str()).unwrap()],
            "\"x\\\"y\""
        );
    }

    #[test]
    fn missing_file_is_unreadable() {
        let err = Document::load(Path::new("/nonexistent/x.yaml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.yaml: cannot read"));
    }
}
