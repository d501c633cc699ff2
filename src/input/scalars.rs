//! Every scalar of a YAML text with its key path and its exact place in the
//! source, and every comment: what an in-place edit of the file needs.
//!
//! [`super::yaml::Document`] gives values with their first line and
//! column, enough to report a problem. Masking a value in place needs more:
//! the byte range of a block scalar or a quoted one over several lines, its
//! style, and whether an anchor makes it stand in other places too. The
//! event parser under serde-saphyr (granit-parser) gives exactly that.

use granit_parser::{Event, Options, Parser, ScalarStyle};

/// One step of a key path: a mapping key, or any item of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Item,
}

/// How a scalar is written in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    /// A `|` or `>` block.
    Block,
}

/// One value of the text (keys are part of [`Scalar::path`]).
#[derive(Clone, Debug)]
pub struct Scalar {
    pub path: Vec<Step>,
    pub value: String,
    pub style: Style,
    /// Byte range in the source: quotes included; a block's content only
    /// (after its `|` or `>` header, up to the next line's indentation).
    pub span: std::ops::Range<usize>,
    /// It, or a collection around it, carries an anchor, so an alias may
    /// repeat it under another key.
    pub anchored: bool,
    /// 1-based line of its first character.
    pub line: usize,
}

impl Scalar {
    /// Written over more than one line (a block, or a wrapped quoted or
    /// plain scalar).
    pub fn multi_line(&self, text: &str) -> bool {
        self.style == Style::Block || text[self.span.clone()].contains('\n')
    }

    /// A plain scalar YAML reads as a boolean, null or number, not a string.
    pub fn is_plain_non_string(&self) -> bool {
        self.style == Style::Plain
            && (matches!(
                self.value.as_str(),
                "" | "~"
                    | "null"
                    | "Null"
                    | "NULL"
                    | "true"
                    | "True"
                    | "TRUE"
                    | "false"
                    | "False"
                    | "FALSE"
            ) || self.value.parse::<f64>().is_ok()
                || self.value.parse::<i64>().is_ok())
    }

    /// The path as dotted text (`bridge.permissions.@a:b.c`, `listeners[].port`).
    pub fn dotted(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Key(key) if out.is_empty() => out.push_str(key),
                Step::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Item => out.push_str("[]"),
            }
        }
        out
    }
}

/// A YAML text taken apart: its values and the byte ranges of its comments.
#[derive(Debug, Default)]
pub struct Scalars {
    pub values: Vec<Scalar>,
    /// Mapping keys written as scalars, each with the path of its mapping.
    pub keys: Vec<Scalar>,
    pub comments: Vec<std::ops::Range<usize>>,
}

/// Where the walk is inside one collection.
struct Frame {
    /// `Some` in a mapping: the key of the value being read, `None` while a
    /// key is expected.
    mapping: Option<Option<String>>,
    anchored: bool,
    /// The collection is itself a mapping key (`? [a, b]: c`).
    is_key: bool,
}

/// The walk's state: the collections open around the current event.
#[derive(Default)]
struct Walk {
    frames: Vec<Frame>,
    out: Scalars,
}

impl Walk {
    fn path(&self) -> Vec<Step> {
        self.frames
            .iter()
            .map(|frame| match &frame.mapping {
                Some(key) => Step::Key(key.clone().unwrap_or_default()),
                None => Step::Item,
            })
            .collect()
    }

    /// Whether the next node is a mapping key (and takes its place as one).
    fn take_key_slot(&mut self, key: &str) -> bool {
        match self.frames.last_mut() {
            Some(Frame {
                mapping: Some(slot @ None),
                ..
            }) => {
                *slot = Some(key.to_owned());
                true
            }
            _ => false,
        }
    }

    /// A value ends: the mapping around it expects a key again.
    fn value_done(&mut self) {
        if let Some(Frame {
            mapping: Some(slot),
            ..
        }) = self.frames.last_mut()
        {
            *slot = None;
        }
    }

    fn anchored(&self) -> bool {
        self.frames.last().is_some_and(|frame| frame.anchored)
    }

    fn open(&mut self, is_mapping: bool, anchor: usize) {
        // A collection as a key (rare) takes the key slot as `?`.
        let is_key = self.take_key_slot("?");
        let anchored = self.anchored() || anchor != 0;
        self.frames.push(Frame {
            mapping: is_mapping.then_some(None),
            anchored,
            is_key,
        });
    }

    fn close(&mut self) {
        let closed = self.frames.pop();
        // After a key comes its value; after a value, the next key.
        if !closed.is_some_and(|frame| frame.is_key) {
            self.value_done();
        }
    }

    fn scalar(&mut self, value: String, style: ScalarStyle, anchor: usize, span: Span) {
        let style = match style {
            ScalarStyle::Plain => Style::Plain,
            ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
            _ => Style::Quoted,
        };
        let mut scalar = Scalar {
            path: self.path(),
            value,
            style,
            span: span.range,
            anchored: self.anchored() || anchor != 0,
            line: span.line,
        };
        if self.take_key_slot(&scalar.value) {
            scalar.path.pop();
            self.out.keys.push(scalar);
            return;
        }
        self.out.values.push(scalar);
        self.value_done();
    }
}

struct Span {
    range: std::ops::Range<usize>,
    line: usize,
}

/// Takes `text` apart; the parser's message when it is not valid YAML.
pub fn scalars(text: &str) -> Result<Scalars, String> {
    let mut options = Options::default();
    options.set_emit_comments(true);
    let mut walk = Walk::default();
    for next in Parser::new_from_str_with_options(text, options) {
        let (event, span) = next.map_err(|error| error.to_string())?;
        let range = span
            .byte_range()
            .ok_or("the YAML parser gave no byte offsets")?;
        let span = Span {
            range,
            line: span.start.line(),
        };
        match event {
            Event::DocumentStart(..) => walk.frames.clear(),
            Event::MappingStart(_, anchor, _) => walk.open(true, anchor),
            Event::SequenceStart(_, anchor, _) => walk.open(false, anchor),
            Event::MappingEnd | Event::SequenceEnd => walk.close(),
            Event::Scalar(value, style, anchor, _) => {
                walk.scalar(value.into_owned(), style, anchor, span)
            }
            // An alias as a key takes the key slot; as a value it ends one.
            Event::Alias(_) | Event::UnresolvedAlias(_) if !walk.take_key_slot("*") => {
                walk.value_done()
            }
            Event::Comment(..) => walk.out.comments.push(span.range),
            _ => {}
        }
    }
    Ok(walk.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<(String, String)> {
        scalars(text)
            .unwrap()
            .values
            .iter()
            .map(|s| (s.dotted(), text[s.span.clone()].to_owned()))
            .collect()
    }

    #[test]
    fn values_have_paths_and_exact_spans() {
        let text = "a:\n  b: \"x y\" # note\n  c: [1, {d: e}]\n  f: |\n    one\n    two\n  g: 'h'\nl:\n  - m: n\n";
        assert_eq!(
            paths(text),
            [
                ("a.b".to_owned(), "\"x y\"".to_owned()),
                ("a.c[]".to_owned(), "1".to_owned()),
                ("a.c[].d".to_owned(), "e".to_owned()),
                ("a.f".to_owned(), "one\n    two\n  ".to_owned()),
                ("a.g".to_owned(), "'h'".to_owned()),
                ("l[].m".to_owned(), "n".to_owned()),
            ]
        );
        let parsed = scalars(text).unwrap();
        assert_eq!(parsed.comments.len(), 1);
        assert_eq!(&text[parsed.comments[0].clone()], "# note");
        assert!(parsed.values[3].multi_line(text));
    }

    #[test]
    fn anchors_mark_the_value_and_everything_under_them() {
        let text = "a: &x secret\nb: *x\nc: &m\n  d: e\nf: plain\n";
        let parsed = scalars(text).unwrap();
        let anchored: Vec<(String, bool)> = parsed
            .values
            .iter()
            .map(|s| (s.dotted(), s.anchored))
            .collect();
        assert_eq!(
            anchored,
            [
                ("a".to_owned(), true),
                ("c.d".to_owned(), true),
                ("f".to_owned(), false)
            ]
        );
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(scalars("a: [1, 2\nb: c\n").is_err());
    }
}
