//! What the homeserver answered, kept raw: how a request failed before any
//! answer, the status with errcode and error text, what `/versions` said.

use std::collections::BTreeMap;

use ruma::api::SupportedVersions;
use serde::Serialize;

/// How a request failed before any HTTP answer came back.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "error", rename_all = "snake_case")]
pub enum ConnectError {
    Dns(String),
    Refused(String),
    Timeout(String),
    TlsUntrusted(String),
    Other(String),
}

impl ConnectError {
    pub fn message(&self) -> &str {
        match self {
            ConnectError::Dns(m)
            | ConnectError::Refused(m)
            | ConnectError::Timeout(m)
            | ConnectError::TlsUntrusted(m)
            | ConnectError::Other(m) => m,
        }
    }

    pub(super) fn from_reqwest(err: &reqwest::Error) -> ConnectError {
        let chain = error_chain(err);
        let lower = chain.to_lowercase();
        if err.is_timeout() || lower.contains("timed out") {
            ConnectError::Timeout(chain)
        } else if lower.contains("certificate")
            || lower.contains("unknownissuer")
            || lower.contains("invalid peer")
        {
            ConnectError::TlsUntrusted(chain)
        } else if lower.contains("dns error")
            || lower.contains("failed to lookup")
            || lower.contains("name or service not known")
        {
            ConnectError::Dns(chain)
        } else if lower.contains("connection refused") {
            ConnectError::Refused(chain)
        } else {
            ConnectError::Other(chain)
        }
    }
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused"
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let piece = inner.to_string();
        if !text.contains(&piece) {
            text.push_str(": ");
            text.push_str(&piece);
        }
        source = inner.source();
    }
    text
}

/// An HTTP answer kept as the checks need it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    pub status: u16,
    pub errcode: Option<String>,
    pub error: Option<String>,
    /// The body as JSON, when it was JSON.
    pub json: Option<serde_json::Value>,
    /// The first bytes of a body that was not JSON (an HTML error page, say).
    pub text_excerpt: Option<String>,
}

impl Answer {
    pub(super) fn from_parts(status: u16, body: &[u8]) -> Answer {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Answer {
            status,
            errcode: field("errcode"),
            error: field("error"),
            text_excerpt: json
                .is_none()
                .then(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
            json,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn errcode_is(&self, code: &str) -> bool {
        self.errcode.as_deref() == Some(code)
    }

    /// "403 M_FORBIDDEN: Application service has not registered this user"
    /// Redacted: error texts quote whatever the other side sent.
    pub fn summary(&self) -> String {
        crate::shared::redact::line(&self.raw_summary())
    }

    fn raw_summary(&self) -> String {
        match (&self.errcode, &self.error) {
            (Some(code), Some(error)) => format!("{} {code}: {error}", self.status),
            (Some(code), None) => format!("{} {code}", self.status),
            _ => match &self.text_excerpt {
                Some(text) if !text.trim().is_empty() => {
                    format!("{} with a non-JSON body: {}", self.status, text.trim())
                }
                _ => format!("HTTP {}", self.status),
            },
        }
    }
}

/// What `/_matrix/client/versions` told us.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Versions {
    pub versions: Vec<String>,
    pub unstable_features: BTreeMap<String, bool>,
}

impl Versions {
    pub fn supported(&self) -> SupportedVersions {
        SupportedVersions::from_parts(&self.versions, &self.unstable_features)
    }

    pub fn supports(&self, version: &str) -> bool {
        let wanted = parse_version(version);
        self.versions.iter().any(|v| parse_version(v) >= wanted)
    }
}

/// "v1.11" -> (1, 11); "r0.6.1" -> (0, 6) so it sorts below every v1.
fn parse_version(text: &str) -> (u32, u32) {
    let digits = text.trim_start_matches(['v', 'r']);
    let mut parts = digits.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Why `/versions` did not give a usable answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VersionsError {
    Connect { error: ConnectError },
    NotMatrix { answer: Answer },
}

/// Name and version from the unauthenticated federation version endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerSoftware {
    pub name: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_keeps_errcode_and_html_excerpt() {
        let answer = Answer::from_parts(403, br#"{"errcode":"M_FORBIDDEN","error":"nope"}"#);
        assert_eq!(answer.summary(), "403 M_FORBIDDEN: nope");
        let html = Answer::from_parts(502, b"<html>Bad Gateway</html>");
        assert_eq!(
            html.summary(),
            "502 with a non-JSON body: <html>Bad Gateway</html>"
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let versions = Versions {
            versions: vec!["r0.6.1".into(), "v1.11".into()],
            unstable_features: BTreeMap::new(),
        };
        assert!(versions.supports("v1.7"));
        assert!(!versions.supports("v1.12"));
    }
}
