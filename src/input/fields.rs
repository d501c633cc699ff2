//! Reading typed fields out of a [`Node`] tree while collecting every
//! problem with its file, position and field path.
//!
//! The doctor's own config and the lenient registration parser share this,
//! so "expected a string at line 4" reads the same wherever it comes from.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::input::yaml::{Node, Pos, Value};

/// One problem with one field of one file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldProblem {
    pub file: PathBuf,
    pub pos: Pos,
    /// Dotted path of the field (`appservice.as_token`, `namespaces.users[0].regex`).
    pub field: String,
    /// What is wrong, then what to do; never holds a field's value.
    pub message: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line > 0 {
            write!(
                f,
                "{}:{}: `{}`: {}",
                self.file.display(),
                self.pos,
                self.field,
                self.message
            )
        } else {
            write!(
                f,
                "{}: `{}`: {}",
                self.file.display(),
                self.field,
                self.message
            )
        }
    }
}

/// Walks one file's tree, remembering problems instead of stopping at the first.
pub struct FieldReader<'a> {
    pub file: &'a Path,
    pub problems: Vec<FieldProblem>,
}

impl<'a> FieldReader<'a> {
    pub fn new(file: &'a Path) -> Self {
        FieldReader {
            file,
            problems: Vec::new(),
        }
    }

    pub fn problem(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.problems.push(FieldProblem {
            file: self.file.to_owned(),
            pos,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// A required string; records "missing" or "wrong type" otherwise.
    pub fn string(&mut self, parent: &Node, key: &str, field: &str) -> Option<String> {
        match parent.get(key) {
            None => {
                self.problem(parent.pos, field, "is missing: add it");
                None
            }
            Some(node) => self.string_value(node, field),
        }
    }

    /// An optional string: absent or null give `None` without a problem.
    pub fn opt_string(&mut self, parent: &Node, key: &str, field: &str) -> Option<String> {
        match parent.get(key) {
            None => None,
            Some(node) if node.is_null() => None,
            Some(node) => self.string_value(node, field),
        }
    }

    /// A string or a list of strings (`logs: a.log`, `logs: [a.log, b.log]`);
    /// empty when the key is absent.
    pub fn string_or_list(&mut self, parent: &Node, key: &str, field: &str) -> Vec<String> {
        match parent.get(key) {
            None => Vec::new(),
            Some(Node {
                value: Value::Seq(items),
                ..
            }) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string_value(item, &format!("{field}[{i}]")))
                .collect(),
            Some(node) => self.string_value(node, field).into_iter().collect(),
        }
    }

    /// Numbers are accepted where a string is wanted (a port written as a
    /// bare number in a URL field is still text); lists and maps are not.
    pub fn string_value(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) => node.scalar_text(),
            _ => {
                self.problem(
                    node.pos,
                    field,
                    format!("must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    pub fn opt_bool(&mut self, parent: &Node, key: &str, field: &str) -> Option<bool> {
        let node = parent.get(key)?;
        match node.value {
            Value::Bool(b) => Some(b),
            Value::Null => None,
            _ => {
                self.problem(
                    node.pos,
                    field,
                    format!("must be true or false (unquoted), found {}", node.kind()),
                );
                None
            }
        }
    }

    pub fn opt_u64(&mut self, parent: &Node, key: &str, field: &str) -> Option<u64> {
        let node = parent.get(key)?;
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::Null => None,
            _ => {
                self.problem(
                    node.pos,
                    field,
                    format!("must be a whole number, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A mapping that must be present; records a problem and returns `None` otherwise.
    pub fn section<'n>(&mut self, parent: &'n Node, key: &str) -> Option<&'n Node> {
        match parent.get(key) {
            Some(node) if matches!(node.value, Value::Map(_)) => Some(node),
            Some(node) => {
                self.problem(
                    node.pos,
                    key,
                    format!("must be a mapping of keys, found {}", node.kind()),
                );
                None
            }
            None => {
                self.problem(parent.pos, key, "section is missing: add it");
                None
            }
        }
    }
}
