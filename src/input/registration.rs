//! Appservice registration files: a lenient reader that keeps every problem
//! and the unstable keys (the doctor's own is written by `service::generate`).
//!
//! ruma's `Registration` is strict and drops unstable keys, so we read the
//! YAML tree ourselves: every problem Synapse would refuse to start on is
//! collected with its position, and unknown keys stay available.

use std::path::{Path, PathBuf};

use crate::input::fields::{FieldProblem, FieldReader};
use crate::input::yaml::{Document, Node, Pos, Value};

/// Values of a registration a supporter may see; the tokens never
/// (deny by default, `input::safe_paths`).
pub const SAFE_PATHS: &[&str] = &[
    "id",
    "url",
    "sender_localpart",
    "protocols[]",
    "namespaces.*[].regex",
];

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NamespaceEntry {
    pub regex: String,
    pub exclusive: bool,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Namespaces {
    pub users: Vec<NamespaceEntry>,
    pub aliases: Vec<NamespaceEntry>,
    pub rooms: Vec<NamespaceEntry>,
}

/// A flag that Synapse reads with Python truthiness: a string such as
/// `"false"` still counts as true, which is why we keep what was written.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Absent,
    Bool(bool),
    /// Anything that is not a YAML boolean, as text (`"false"`, `1`).
    NotBoolean(String),
}

impl Flag {
    fn read(node: Option<&Node>) -> Flag {
        match node {
            None => Flag::Absent,
            Some(node) => match &node.value {
                Value::Bool(b) => Flag::Bool(*b),
                Value::Null => Flag::Absent,
                _ => Flag::NotBoolean(node.scalar_text().unwrap_or_else(|| node.kind().to_owned())),
            },
        }
    }

    /// What Synapse makes of it (Python `bool(value)`).
    pub fn effective(&self) -> bool {
        match self {
            Flag::Absent => false,
            Flag::Bool(b) => *b,
            Flag::NotBoolean(text) => !text.is_empty() && text != "0",
        }
    }
}

pub const EPHEMERAL_KEYS: [&str; 2] = ["receive_ephemeral", "de.sorunome.msc2409.push_ephemeral"];
pub const MSC3202_KEY: &str = "org.matrix.msc3202";
pub const MSC4190_KEY: &str = "io.element.msc4190";

/// A registration as far as it could be read; `problems` lists what Synapse
/// would refuse.
#[derive(Clone, Debug)]
pub struct Registration {
    pub path: PathBuf,
    pub document: Document,
    pub id: Option<String>,
    /// `None`: the key is absent (Synapse refuses); `Some(None)`: null.
    pub url: Option<Option<String>>,
    pub as_token: Option<String>,
    pub hs_token: Option<String>,
    pub sender_localpart: Option<String>,
    pub namespaces: Namespaces,
    pub rate_limited: Option<bool>,
    /// `ip_range_whitelist`: the only addresses the as_token is accepted from.
    pub ip_range_whitelist: Vec<String>,
    pub receive_ephemeral: Flag,
    pub push_ephemeral: Flag,
    pub msc3202: Flag,
    pub msc4190: Flag,
    pub problems: Vec<FieldProblem>,
}

impl Registration {
    pub fn parse(document: Document) -> Registration {
        let path = document.path.clone();
        let root = document.root.clone();
        let mut reader = FieldReader::new(&path);
        if !matches!(root.value, Value::Map(_)) {
            reader.problem(
                root.pos,
                "(file)",
                format!("must be a mapping of keys, found {}", root.kind()),
            );
        }
        let id = reader.string(&root, "id", "id");
        if let Some(id) = &id
            && id.contains('|')
        {
            let pos = root.get("id").map(|n| n.pos).unwrap_or_default();
            reader.problem(
                pos,
                "id",
                "must not contain `|`: Synapse refuses such an id; pick a plain name",
            );
        }
        let url = match root.get("url") {
            None => {
                reader.problem(root.pos, "url", "is missing: add `url: http://host:port` (or `url: null` for an appservice that receives nothing)");
                None
            }
            Some(node) if node.is_null() => Some(None),
            Some(node) => Some(reader.string_value(node, "url")),
        };
        let as_token = reader.string(&root, "as_token", "as_token");
        let hs_token = reader.string(&root, "hs_token", "hs_token");
        let sender_localpart = reader.string(&root, "sender_localpart", "sender_localpart");
        let namespaces = read_namespaces(&mut reader, &root);
        let rate_limited = reader.opt_bool(&root, "rate_limited", "rate_limited");
        let msc3202 = Flag::read(root.get(MSC3202_KEY));
        let msc4190 = Flag::read(root.get(MSC4190_KEY));
        for (key, flag) in [(MSC3202_KEY, &msc3202), (MSC4190_KEY, &msc4190)] {
            if let Flag::NotBoolean(_) = flag {
                let pos = root.get(key).map(|n| n.pos).unwrap_or_default();
                reader.problem(
                    pos,
                    key,
                    "must be true or false without quotes: Synapse refuses to start otherwise",
                );
            }
        }
        Registration {
            receive_ephemeral: Flag::read(root.get(EPHEMERAL_KEYS[0])),
            push_ephemeral: Flag::read(root.get(EPHEMERAL_KEYS[1])),
            msc3202,
            msc4190,
            problems: reader.problems,
            path,
            document,
            id,
            url,
            as_token,
            hs_token,
            sender_localpart,
            namespaces,
            rate_limited,
            ip_range_whitelist: root
                .get("ip_range_whitelist")
                .map(|list| list.items().iter().filter_map(Node::scalar_text).collect())
                .unwrap_or_default(),
        }
    }

    pub fn load(path: &Path) -> Result<Registration, crate::input::yaml::LoadError> {
        Document::load(path).map(Registration::parse)
    }

    pub fn position_of(&self, key: &str) -> Pos {
        self.document
            .root
            .get(key)
            .map(|n| n.pos)
            .unwrap_or_default()
    }

    /// The same registration in another file (a copy given to the
    /// homeserver): every key and value alike, comments and layout aside.
    pub fn same_content(&self, other: &Registration) -> bool {
        self.document.root.same_value(&other.document.root)
    }

    pub fn url(&self) -> Option<&str> {
        self.url.as_ref().and_then(|u| u.as_deref())
    }

    pub fn ephemeral_enabled(&self) -> bool {
        self.receive_ephemeral.effective() || self.push_ephemeral.effective()
    }
}

fn read_namespaces(reader: &mut FieldReader, root: &Node) -> Namespaces {
    let mut namespaces = Namespaces::default();
    let Some(section) = root.get("namespaces") else {
        reader.problem(
            root.pos,
            "namespaces",
            "is missing: add `namespaces:` with a `users:` list",
        );
        return namespaces;
    };
    if !matches!(section.value, Value::Map(_)) {
        reader.problem(
            section.pos,
            "namespaces",
            format!(
                "must be a mapping with users/aliases/rooms, found {}",
                section.kind()
            ),
        );
        return namespaces;
    }
    for (kind, target) in [
        ("users", &mut namespaces.users),
        ("aliases", &mut namespaces.aliases),
        ("rooms", &mut namespaces.rooms),
    ] {
        let Some(list) = section.get(kind) else {
            continue;
        };
        if list.is_null() {
            continue;
        }
        if !matches!(list.value, Value::Seq(_)) {
            reader.problem(
                list.pos,
                &format!("namespaces.{kind}"),
                format!("must be a list, found {}", list.kind()),
            );
            continue;
        }
        for (index, item) in list.items().iter().enumerate() {
            let field = format!("namespaces.{kind}[{index}]");
            let regex = reader.string(item, "regex", &format!("{field}.regex"));
            let exclusive = match item.get("exclusive") {
                Some(node) => match node.as_bool() {
                    Some(b) => Some(b),
                    None => {
                        reader.problem(
                            node.pos,
                            &format!("{field}.exclusive"),
                            format!("must be true or false, found {}", node.kind()),
                        );
                        None
                    }
                },
                None => {
                    reader.problem(
                        item.pos,
                        &format!("{field}.exclusive"),
                        "is missing: add `exclusive: true` or `false`",
                    );
                    None
                }
            };
            if let (Some(regex), Some(exclusive)) = (regex, exclusive) {
                target.push(NamespaceEntry {
                    regex,
                    exclusive,
                    pos: item.get("regex").map(|n| n.pos).unwrap_or(item.pos),
                });
            }
        }
    }
    namespaces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Registration {
        Registration::parse(Document::parse(Path::new("reg.yaml"), text).unwrap())
    }

    #[test]
    fn fixture_registration_parses_cleanly_and_keeps_unstable_keys() {
        let reg = parse(
            &std::fs::read_to_string(crate::testutil::shared_fixture(
                "mautrix-telegram/registration.generated.yaml",
            ))
            .unwrap(),
        );
        assert!(reg.problems.is_empty(), "{:?}", reg.problems);
        assert_eq!(reg.id.as_deref(), Some("telegram"));
        assert_eq!(reg.namespaces.users.len(), 2);
        assert_eq!(reg.push_ephemeral, Flag::Bool(true));
        assert!(reg.ephemeral_enabled());
        assert_eq!(reg.url(), Some("http://localhost:29317"));
    }

    #[test]
    fn every_problem_is_listed_with_position() {
        let reg = parse(
            "id: a|b\nas_token: [x]\nnamespaces:\n  users:\n    - regex: '@a_.*'\n    - exclusive: 'yes'\norg.matrix.msc3202: \"true\"\n",
        );
        let text: Vec<String> = reg.problems.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(
            all.contains("reg.yaml:1:5: `id`: must not contain `|`"),
            "{all}"
        );
        assert!(all.contains("`url`: is missing"), "{all}");
        assert!(
            all.contains("reg.yaml:2:11: `as_token`: must be a string, found a list"),
            "{all}"
        );
        assert!(all.contains("`hs_token`: is missing"), "{all}");
        assert!(
            all.contains("`namespaces.users[0].exclusive`: is missing"),
            "{all}"
        );
        assert!(
            all.contains("`namespaces.users[1].regex`: is missing"),
            "{all}"
        );
        assert!(
            all.contains("`namespaces.users[1].exclusive`: must be true or false, found a string"),
            "{all}"
        );
        assert!(
            all.contains("`org.matrix.msc3202`: must be true or false"),
            "{all}"
        );
    }

    #[test]
    fn string_flag_counts_as_true_like_python() {
        let reg = parse("receive_ephemeral: \"false\"\n");
        assert_eq!(reg.receive_ephemeral, Flag::NotBoolean("false".into()));
        assert!(reg.ephemeral_enabled());
    }

    #[test]
    fn null_url_is_allowed_but_absent_url_is_not() {
        assert!(
            parse("url: null\n")
                .problems
                .iter()
                .all(|p| p.field != "url")
        );
        assert!(parse("id: x\n").problems.iter().any(|p| p.field == "url"));
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        const KEYS: &[&str] = &[
            "id",
            "url",
            "as_token",
            "hs_token",
            "sender_localpart",
            "namespaces",
            "users",
            "aliases",
            "rooms",
            "regex",
            "exclusive",
            "rate_limited",
            "receive_ephemeral",
            "org.matrix.msc3202",
            "io.element.msc4190",
            "ip_range_whitelist",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any YAML of a registration's shape, or any text: read without
            /// panic, and every problem names a field.
            #[test]
            fn any_registration_is_read_without_panic(text in prop_oneof![crate::testutil::yaml_documents(KEYS), "\\PC{0,300}"]) {
                if let Ok(document) = Document::parse(Path::new("r.yaml"), &text) {
                    let registration = Registration::parse(document);
                    prop_assert!(registration.problems.iter().all(|p| !p.field.is_empty()));
                }
            }
        }
    }
}
