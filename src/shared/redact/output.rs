//! The redactor at the doors: a writer for the doctor's own log, and JSON
//! content (chat events) with every string passed through [`super::line`].

use std::io::Write;

/// A writer whose every write is redacted line by line before it reaches
/// `W`. tracing's formatter writes one whole event per call, so a secret
/// is never split across two writes.
pub struct Redacting<W: Write>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(super::text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Every string in `value` redacted, keys and structure untouched.
pub fn json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            let cleaned = super::text(text);
            if cleaned != *text {
                *text = cleaned;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json),
        serde_json::Value::Object(map) => map.values_mut().for_each(json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_writes_and_json_strings_are_redacted() {
        let mut out = Redacting(Vec::new());
        out.write_all(b"INFO login with password=Hunter2Canary done\n")
            .unwrap();
        let written = String::from_utf8(out.0).unwrap();
        assert!(!written.contains("Hunter2Canary"), "{written}");
        let mut content =
            serde_json::json!({"body": "token: CanaryBody1", "n": [{"x": "Bearer CanaryBody2"}]});
        json(&mut content);
        let text = content.to_string();
        assert!(
            !text.contains("CanaryBody1") && !text.contains("CanaryBody2"),
            "{text}"
        );
        assert!(text.contains("\"body\""), "{text}");
    }
}
