//! The secret values the doctor has read, hunted in every line it lets out.
//!
//! Whatever reads a config registers the secrets it holds ([`remember`]);
//! every output then masks them ([`super::line`]), also where no rule could
//! tell them from ordinary text. A value is hunted in each form it takes in
//! a log or a rendering: as is, JSON- and HTML-escaped, URL-encoded, and
//! base64 at each of the three byte alignments (inside a Basic header, a
//! cookie or a blob).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

use super::mask;

/// Shorter values are not hunted: they would mask ordinary words.
const MIN_SECRET_LEN: usize = 6;
/// Base64 forms shorter than this are not hunted (too likely by chance).
const MIN_ENCODED_LEN: usize = 8;

/// Values configs hold in secret fields that are not secrets: placeholders
/// the bridges and the doctor write before generating, and switch words.
const NOT_SECRETS: &[&str] = &[
    "This value is generated when generating the registration",
    "generate",
    "disable",
    "disabled",
    "changeme",
    "CHANGE_ME",
    "REPLACED_FOR_FIXTURE",
];

#[derive(Default)]
struct Hunt {
    values: BTreeSet<String>,
    automaton: Option<Arc<AhoCorasick>>,
    /// Values were added since the automaton was built: it is built again
    /// on the next hunt, once, however many files were read meanwhile.
    stale: bool,
}

/// The process's hunt. Unit tests run one to a thread, each with a hunt of
/// its own, so what one test reads does not mask another's output.
#[cfg(not(test))]
fn with_registry<R>(f: impl FnOnce(&RwLock<Hunt>) -> R) -> R {
    static REGISTRY: std::sync::OnceLock<RwLock<Hunt>> = std::sync::OnceLock::new();
    f(REGISTRY.get_or_init(RwLock::default))
}

#[cfg(test)]
fn with_registry<R>(f: impl FnOnce(&RwLock<Hunt>) -> R) -> R {
    thread_local! {
        static REGISTRY: RwLock<Hunt> = RwLock::default();
    }
    REGISTRY.with(f)
}

/// Whether `value` is worth hunting: long enough and not a placeholder.
fn huntable(value: &str) -> bool {
    value.trim().len() >= MIN_SECRET_LEN && !NOT_SECRETS.contains(&value.trim())
}

/// Adds secret values to the hunt. Cheap when they are known already.
pub fn remember<I: IntoIterator<Item = String>>(values: I) {
    let new: Vec<String> = values.into_iter().filter(|v| huntable(v)).collect();
    with_registry(|lock| {
        if new
            .iter()
            .all(|v| lock.read().is_ok_and(|hunt| hunt.values.contains(v)))
        {
            return;
        }
        if let Ok(mut hunt) = lock.write() {
            hunt.values.extend(new);
            hunt.stale = true;
        }
    });
}

/// The automaton over every form of every value, built again when values
/// came since.
fn automaton() -> Option<Arc<AhoCorasick>> {
    with_registry(|lock| {
        if let Ok(hunt) = lock.read()
            && !hunt.stale
        {
            return hunt.automaton.clone();
        }
        let mut hunt = lock.write().ok()?;
        if hunt.stale {
            let forms: BTreeSet<String> = hunt.values.iter().flat_map(|v| forms(v)).collect();
            // Leftmost-longest masks a whole encoded form, not a part of it.
            hunt.automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&forms)
                .ok()
                .map(Arc::new);
            hunt.stale = false;
        }
        hunt.automaton.clone()
    })
}

/// Every form of one secret as it may stand in a line.
fn forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value)
        .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
        .unwrap_or_default();
    // Go's encoding/json writes `&`, `<` and `>` as `\u0026` and so on.
    let go_json = json
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e");
    let mut forms = vec![value.to_owned(), json, go_json, html_escaped(value)];
    forms.extend(percent_encoded(value));
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.extend((0..3).filter_map(|offset| base64_core(&engine, value, offset)));
    }
    forms.retain(|form| !form.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// The percent-encodings clients write: form encoding (`+` for a space),
/// `%20` for a space, RFC 3986's (`~` kept), each in upper- and lower-case
/// hex.
fn percent_encoded(value: &str) -> Vec<String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const UNRESERVED: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let rfc3986 = utf8_percent_encode(value, UNRESERVED).to_string();
    let upper = [form.replace('+', "%20"), form, rfc3986];
    let lower = upper.clone().map(|encoded| lowercase_hex(&encoded));
    upper.into_iter().chain(lower).collect()
}

/// `%2F` as `%2f`: only the two digits after each `%` change.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut digits = 0;
    for c in encoded.chars() {
        if digits > 0 {
            out.push(c.to_ascii_lowercase());
            digits -= 1;
        } else {
            out.push(c);
            if c == '%' {
                digits = 2;
            }
        }
    }
    out
}

fn html_escaped(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The base64 characters that depend on `value`'s bytes alone when it
/// starts `offset` bytes into a 3-byte group, whatever surrounds it.
fn base64_core(engine: &impl Engine, value: &str, offset: usize) -> Option<String> {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(value.as_bytes());
    let encoded = engine.encode(&bytes);
    // Leading characters mixing padding bytes, trailing ones mixing the
    // bytes that follow.
    let skip = [0, 2, 3][offset];
    let keep = bytes.len() / 3 * 4;
    let core = encoded.get(skip..keep)?;
    (core.len() >= MIN_ENCODED_LEN).then(|| core.to_owned())
}

/// `text` with every known secret, in any of its forms, masked; `None` when
/// it holds none.
pub fn apply(text: &str) -> Option<String> {
    let automaton = automaton()?;
    if !automaton.is_match(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for hit in automaton.find_iter(text) {
        out.push_str(&text[last..hit.start()]);
        out.push_str(&mask(&text[hit.start()..hit.end()]));
        last = hit.end();
    }
    out.push_str(&text[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_hunted() {
        let secret = "Hunt3d-s3cret/with+chars&\"q\"";
        remember([secret.to_owned()]);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("bob:{secret}"));
        for line in [
            format!("plain {secret} end"),
            format!("json {}", serde_json::to_string(secret).unwrap()),
            format!("html {}", html_escaped(secret)),
            format!(
                "query ?x={}",
                url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
            ),
            format!("Authorization: Basic {basic}"),
        ] {
            let out = apply(&line).unwrap_or_else(|| line.clone());
            assert!(!out.contains("Hunt3d"), "{out}");
            assert!(!out.contains("s3cret"), "{out}");
        }
        let out = apply(&format!("xx {basic} yy")).unwrap();
        assert!(!out.contains(&basic[8..basic.len() - 4]), "{out}");
    }

    #[test]
    fn placeholders_and_short_values_are_not_hunted() {
        remember(["generate".to_owned(), "abc".to_owned()]);
        assert_eq!(apply("generate the registration with abc"), None);
    }
}
