//! JSON, as the contract gives it: the check report, `explain`'s matches,
//! and the packet's data files (`bridges.json`, `redactions.json`).

use serde::Serialize;

use crate::knowledge::scan::Explained;
use crate::render::report::Report;

/// Any serialisable value, pretty-printed.
pub fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn report(report: &Report) -> String {
    pretty(report)
}

pub fn explained(explained: &Explained) -> String {
    pretty(explained)
}
