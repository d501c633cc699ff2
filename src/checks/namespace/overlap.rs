//! Do two namespace regexes claim a common ID? Decided exactly, with DFAs.
//!
//! Synapse tests a regex with Python's `re.match`: anchored at the start
//! only, so a regex R claims every ID that has a prefix in R. Two exclusive
//! regexes conflict when some valid ID of the server's domain is claimed by
//! both. That is an intersection of three regular languages: prefixes of
//! R1, prefixes of R2, and the valid IDs. The product of their DFAs is
//! searched breadth first; the first accepting state spells the shortest
//! witness ID.
//!
//! Every pair of registrations is compared, so each regex is compiled once
//! per process, and pairs whose literal prefixes already differ (the usual
//! `@telegram_` against `@signal_`) are disjoint without a search.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

/// Which IDs a namespace holds; each kind has its own sigil and grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Users,
    Aliases,
    Rooms,
}

impl IdKind {
    /// Valid IDs of `domain`, as a regex matched in full. User localparts
    /// follow the current grammar (the homeserver creates no others);
    /// aliases and room IDs allow any visible ASCII but `:`, and room IDs
    /// of room version 12 carry no domain.
    fn valid_ids(self, domain: &str) -> String {
        let domain = regex::escape(domain);
        match self {
            IdKind::Users => format!("@[a-z0-9._=/+\\-]+:{domain}"),
            IdKind::Aliases => format!("#[!-9;-~]+:{domain}"),
            IdKind::Rooms => format!("![!-9;-~]+(?::{domain})?"),
        }
    }
}

/// The answer for one pair of regexes.
#[derive(Debug, PartialEq, Eq)]
pub enum Overlap {
    Disjoint,
    /// The shortest ID both claim.
    Shared(String),
    /// A regex the DFA cannot express (Python-only syntax, Unicode word
    /// boundaries) or a product too large to search.
    Unverifiable(String),
}

type Dfa = dense::DFA<Vec<u32>>;

/// An anchored DFA that reports every match (not only leftmost-first ones),
/// so a match state marks every prefix the regex accepts.
fn compile(pattern: &str) -> Result<(Dfa, StateID), String> {
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .match_kind(MatchKind::All)
                .dfa_size_limit(Some(8 << 20))
                .determinize_size_limit(Some(8 << 20)),
        )
        .build(pattern)
        .map_err(|e| e.to_string())?;
    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::Yes))
        .map_err(|e| e.to_string())?;
    Ok((dfa, start))
}

/// A regex as the comparisons need it, built once.
struct Compiled {
    pattern: String,
    /// Every ID the regex claims starts with one of these; `None` when
    /// that is not a finite set (or the regex does not parse).
    prefixes: Option<Vec<Vec<u8>>>,
    dfa: OnceLock<Result<(Dfa, StateID), String>>,
}

impl Compiled {
    fn dfa(&self) -> &Result<(Dfa, StateID), String> {
        self.dfa.get_or_init(|| compile(&self.pattern))
    }
}

/// Most regexes kept compiled; the cache starts over beyond it.
const CACHE_LIMIT: usize = 10_000;

fn compiled(pattern: &str) -> Arc<Compiled> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<Compiled>>>> = LazyLock::new(Default::default);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = cache.get(pattern) {
        return Arc::clone(found);
    }
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    let entry = Arc::new(Compiled {
        pattern: pattern.to_owned(),
        prefixes: literal_prefixes(pattern),
        dfa: OnceLock::new(),
    });
    cache.insert(pattern.to_owned(), Arc::clone(&entry));
    entry
}

fn literal_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_automata::util::syntax::parse(pattern).ok()?;
    let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
    seq.literals()
        .map(|literals| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// False only when no ID can start with a prefix of both: one literal
/// prefix of each must be a prefix of the other for any common claim.
fn may_share(a: &Compiled, b: &Compiled) -> bool {
    match (&a.prefixes, &b.prefixes) {
        (Some(xs), Some(ys)) => xs
            .iter()
            .any(|x| ys.iter().any(|y| x.starts_with(y) || y.starts_with(x))),
        _ => true,
    }
}

/// One regex's progress along an input: still looking, or a prefix matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Claim {
    Looking(StateID),
    Claimed,
}

impl Claim {
    /// The claim after one more byte; `None` when no extension can match.
    fn step(self, dfa: &Dfa, byte: u8) -> Option<Claim> {
        let Claim::Looking(state) = self else {
            return Some(Claim::Claimed);
        };
        let next = dfa.next_state(state, byte);
        // Matches are reported one byte late: `next` is a match state when
        // the input before `byte` matched, which is a claimed prefix.
        if dfa.is_match_state(next) {
            Some(Claim::Claimed)
        } else if dfa.is_dead_state(next) || dfa.is_quit_state(next) {
            None
        } else {
            Some(Claim::Looking(next))
        }
    }

    fn claimed_at_end(self, dfa: &Dfa) -> bool {
        match self {
            Claim::Claimed => true,
            Claim::Looking(state) => dfa.is_match_state(dfa.next_eoi_state(state)),
        }
    }
}

/// The most product states searched before giving up as unverifiable.
const SEARCH_LIMIT: usize = 200_000;

/// Whether `first` and `second` (namespace regexes as written) claim a
/// common valid ID of `kind` on `domain`.
pub fn overlap(first: &str, second: &str, kind: IdKind, domain: &str) -> Overlap {
    let valid_ids = kind.valid_ids(domain);
    let [a, b, v] = [first, second, valid_ids.as_str()].map(compiled);
    if !(may_share(&a, &b) && may_share(&a, &v) && may_share(&b, &v)) {
        return Overlap::Disjoint;
    }
    let [first, second, valid] = match [a.dfa(), b.dfa(), v.dfa()] {
        [Ok(a), Ok(b), Ok(v)] => [a, b, v],
        [a, b, v] => {
            let error = [a, b, v]
                .into_iter()
                .find_map(|r| r.as_ref().err())
                .cloned()
                .unwrap_or_default();
            return Overlap::Unverifiable(error);
        }
    };
    let (dfa_a, dfa_b, dfa_v) = (&first.0, &second.0, &valid.0);
    type Node = (Claim, Claim, StateID);
    let start: Node = (Claim::Looking(first.1), Claim::Looking(second.1), valid.1);
    let mut parents: HashMap<Node, Option<(Node, u8)>> = HashMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    while let Some(node @ (a, b, v)) = queue.pop_front() {
        if dfa_v.is_match_state(dfa_v.next_eoi_state(v))
            && a.claimed_at_end(dfa_a)
            && b.claimed_at_end(dfa_b)
        {
            return Overlap::Shared(spell(&parents, node));
        }
        if parents.len() > SEARCH_LIMIT {
            return Overlap::Unverifiable(format!("more than {SEARCH_LIMIT} states to search"));
        }
        for byte in 0x21..=0x7e_u8 {
            let next_v = dfa_v.next_state(v, byte);
            if dfa_v.is_dead_state(next_v) {
                continue;
            }
            let (Some(next_a), Some(next_b)) = (a.step(dfa_a, byte), b.step(dfa_b, byte)) else {
                continue;
            };
            let next = (next_a, next_b, next_v);
            if let std::collections::hash_map::Entry::Vacant(entry) = parents.entry(next) {
                entry.insert(Some((node, byte)));
                queue.push_back(next);
            }
        }
    }
    Overlap::Disjoint
}

/// The input that led from the start to `node`.
fn spell<N: Copy + Eq + std::hash::Hash>(
    parents: &HashMap<N, Option<(N, u8)>>,
    mut node: N,
) -> String {
    let mut bytes = Vec::new();
    while let Some(Some((parent, byte))) = parents.get(&node) {
        bytes.push(*byte);
        node = *parent;
    }
    bytes.reverse();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "doctor.test";

    fn users(a: &str, b: &str) -> Overlap {
        overlap(a, b, IdKind::Users, DOMAIN)
    }

    #[test]
    fn disjoint_prefixes_do_not_overlap() {
        assert_eq!(users("@telegram_.*", "@irc_.*"), Overlap::Disjoint);
        assert_eq!(
            users(
                "@telegram_[0-9]+:doctor\\.test",
                "@telegram_[a-z]+:doctor\\.test$"
            ),
            Overlap::Disjoint
        );
    }

    #[test]
    fn an_overlap_no_sample_hits_is_found_with_a_witness() {
        // Neither bridge's sample IDs (digits, letters) are in the other's
        // namespace, but `@wa_x9` style IDs are in both.
        let Overlap::Shared(witness) = users("@wa_[a-z][0-9]+:doctor\\.test", "@wa_x.*") else {
            panic!("overlap missed");
        };
        assert_eq!(witness, "@wa_x0:doctor.test");
    }

    #[test]
    fn prefix_semantics_follow_python_re_match() {
        // `@bot` claims `@bot_1:…` and `@bottle:…` too: re.match is not anchored at the end.
        assert!(matches!(users("@bot", "@bottle_.*"), Overlap::Shared(_)));
        // …unless the regex anchors its end.
        assert_eq!(
            users("@bot:doctor\\.test$", "@bottle_.*"),
            Overlap::Disjoint
        );
        // A regex for another domain claims nothing here.
        assert_eq!(users("@.*:other\\.test", "@.*"), Overlap::Disjoint);
    }

    #[test]
    fn aliases_and_rooms_have_their_own_sigils() {
        assert!(matches!(
            overlap("#telegram_.*", "#tele.*", IdKind::Aliases, DOMAIN),
            Overlap::Shared(w) if w.starts_with("#tele")
        ));
        assert_eq!(
            overlap("@telegram_.*", "@telegram_.*", IdKind::Aliases, DOMAIN),
            Overlap::Disjoint
        );
        assert!(matches!(
            overlap("!abc", "!.*", IdKind::Rooms, DOMAIN),
            Overlap::Shared(_)
        ));
    }

    #[test]
    fn literal_prefixes_decide_only_when_they_differ() {
        let prefixes = |p: &str| compiled(p).prefixes.clone();
        assert_eq!(prefixes("@telegram_.*"), Some(vec![b"@telegram_".to_vec()]));
        assert!(!may_share(
            &compiled("@telegram_.*"),
            &compiled("@signal_.*")
        ));
        assert!(may_share(&compiled("@tele.*"), &compiled("@telegram_.*")));
        assert!(
            may_share(&compiled(".*"), &compiled("@x")),
            "no finite prefix set"
        );
    }

    #[test]
    fn syntax_a_dfa_cannot_run_is_unverifiable() {
        assert!(matches!(
            users("@(?!admin).*", "@a.*"),
            Overlap::Unverifiable(_)
        ));
        assert!(matches!(users("@a\\b.*", "@a.*"), Overlap::Unverifiable(_)));
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        const ATOMS: &[&str] = &[
            "a", "b", "_", "[ab]", ".", "a*", "b+", "(a|b_)", "[a-z]*", "_?", ":d",
        ];

        fn namespace() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(prop::sample::select(ATOMS), 1..5),
                any::<bool>(),
            )
                .prop_map(|(atoms, anchored)| {
                    format!("@{}{}", atoms.concat(), if anchored { "$" } else { "" })
                })
        }

        /// Every user ID of domain `d` with a localpart of up to five of `a`, `b`, `_`.
        fn small_ids() -> Vec<String> {
            let mut localparts = vec![String::new()];
            let mut all = Vec::new();
            for _ in 0..5 {
                localparts = localparts
                    .iter()
                    .flat_map(|l| ["a", "b", "_"].map(|c| format!("{l}{c}")))
                    .collect();
                all.extend(localparts.iter().map(|l| format!("@{l}:d")));
            }
            all
        }

        /// Python's `re.match`: a match starting at the beginning, ending anywhere.
        fn python_match(pattern: &str) -> regex::Regex {
            regex::Regex::new(&format!("^(?:{pattern})")).unwrap()
        }

        proptest! {
            #[test]
            fn the_product_agrees_with_brute_force(a in namespace(), b in namespace()) {
                let (ra, rb) = (python_match(&a), python_match(&b));
                let both: Vec<String> = small_ids().into_iter().filter(|id| ra.is_match(id) && rb.is_match(id)).collect();
                match overlap(&a, &b, IdKind::Users, "d") {
                    Overlap::Shared(witness) => {
                        prop_assert!(ra.is_match(&witness) && rb.is_match(&witness), "{witness}");
                        prop_assert!(regex::Regex::new("^@[a-z0-9._=/+-]+:d$").unwrap().is_match(&witness), "{witness}");
                    }
                    Overlap::Disjoint => prop_assert!(both.is_empty(), "missed {both:?}"),
                    Overlap::Unverifiable(why) => prop_assert!(false, "{why}"),
                }
            }
        }
    }
}
