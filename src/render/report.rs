//! The report of one check run, as every renderer reads it: the
//! homeserver, the targets, each finding and the counts. Its serde shape is
//! the contract's JSON (`json.rs` prints it).

use serde::Serialize;

use crate::checks::diagnoses::{Diagnosis, diagnose};
use crate::checks::{Finding, Summary};
use crate::facts::{Facts, TargetKind};

#[derive(Serialize)]
pub struct HomeserverInfo {
    pub address: String,
    pub server_name: String,
    pub software: Option<String>,
    pub version: Option<String>,
}

#[derive(Serialize)]
pub struct TargetInfo {
    pub id: String,
    pub kind: TargetKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// How `--homeserver` came by the config (an addition to the contract).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_found: Option<String>,
    pub registration: String,
}

#[derive(Serialize)]
pub struct Report {
    pub doctor_version: &'static str,
    pub generated_at: String,
    pub homeserver: HomeserverInfo,
    pub targets: Vec<TargetInfo>,
    /// The problems grouped by cause, most blocking first (an addition to
    /// the contract's JSON; `results` still holds every check).
    pub diagnoses: Vec<Diagnosis>,
    pub results: Vec<Finding>,
    pub summary: Summary,
}

impl Report {
    pub fn new(facts: &Facts, results: Vec<Finding>) -> Report {
        let software = facts.homeserver.software.as_ref();
        Report {
            doctor_version: env!("CARGO_PKG_VERSION"),
            generated_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            homeserver: HomeserverInfo {
                address: facts.homeserver.address.clone(),
                server_name: facts
                    .homeserver
                    .server_name_from_config()
                    .unwrap_or(&facts.homeserver.domain)
                    .to_owned(),
                software: software.map(|s| s.name.clone()),
                version: software.map(|s| s.version.clone()),
            },
            targets: facts
                .targets
                .iter()
                .map(|t| TargetInfo {
                    id: t.id.clone(),
                    kind: t.kind,
                    config: t.config().map(|c| c.path().display().to_string()),
                    config_found: t.config_found.clone(),
                    registration: t.registration_path.display().to_string(),
                })
                .collect(),
            summary: Summary::of(&results),
            diagnoses: diagnose(&results),
            results,
        }
    }

    /// 0 nothing failed, 1 something failed (or warned, when strict).
    pub fn exit_code(&self, strict: bool) -> u8 {
        let bad =
            self.summary.fail + self.summary.error + if strict { self.summary.warn } else { 0 };
        u8::from(bad > 0)
    }
}
