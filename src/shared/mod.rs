//! Below every stage: what input, facts, knowledge, checks, render and the
//! layers on top may all use without depending on each other.

pub mod redact;

/// The upstream bridge troubleshooting FAQ the fixes are based on; check
/// verdicts and knowledge-base entries name its sections by anchor.
pub const FAQ: &str = "https://docs.mau.fi/bridges/general/troubleshooting.html";
