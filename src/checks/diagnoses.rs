//! One answer per cause: failing and warning findings that share a cause
//! are grouped into one [`Diagnosis`] (the cause, the evidence from files,
//! probes and logs together, one fix), most blocking first.
//!
//! A new cause is one entry in [`CAUSES`]: the checks that name it (roots)
//! and the checks that only show its effects (symptoms). A check may be a
//! symptom of several causes; it joins the first whose root failed.

use serde::Serialize;

use super::{Finding, Status};

struct Cause {
    id: &'static str,
    /// Checks that name the cause, most telling first; `check:field` matches
    /// a finding whose evidence `field` names that value (`tokens.mismatch`
    /// names which tokens).
    roots: &'static [&'static str],
    /// Checks that show what the cause does (probes answering badly, log lines).
    symptoms: &'static [&'static str],
}

/// Causes in the order they block a bridge: nothing works without the
/// homeserver, then without the files, the tokens, delivery, identity.
const CAUSES: &[Cause] = &[
    Cause {
        id: "homeserver_unreachable",
        roots: &[
            "homeserver.unreachable",
            "homeserver.tls_untrusted",
            "homeserver.not_matrix",
        ],
        symptoms: &[
            "logs.tls_untrusted",
            "logs.homeserver_connect_retry",
            "logs.sync_failing",
        ],
    },
    Cause {
        id: "files_unusable",
        roots: &[
            "config.unreadable",
            "config.invalid_yaml",
            "registration.invalid",
            "registration.not_a_registration",
        ],
        symptoms: &["logs.registration_load_failed"],
    },
    Cause {
        id: "registration_duplicated",
        roots: &[
            "registration.duplicate_as_token",
            "registration.duplicate_id",
        ],
        symptoms: &["logs.registration_load_failed"],
    },
    Cause {
        id: "not_configured",
        roots: &["config.not_configured"],
        symptoms: &["logs.not_configured"],
    },
    Cause {
        id: "as_token_unknown",
        roots: &[
            "registration.not_loaded",
            "registration.stale_copy",
            "tokens.mismatch:as_token",
            "homeserver.ip_whitelist",
        ],
        symptoms: &["tokens.as_token_rejected", "logs.as_token_rejected"],
    },
    Cause {
        id: "hs_token_refused",
        roots: &["tokens.mismatch:hs_token"],
        symptoms: &[
            "tokens.hs_token_rejected",
            "logs.hs_token_rejected",
            "logs.transactions_failing",
            "logs.homeserver_backoff",
            "ping.backoff",
            "delivery.stalled",
        ],
    },
    Cause {
        id: "bridge_unreachable",
        roots: &[
            "registration.url_unset",
            "registration.url_invalid",
            "registration.url_mismatch",
            "delivery.worker_missing",
        ],
        symptoms: &[
            "ping.connection_failed",
            "ping.timeout",
            "ping.bad_status",
            "logs.ping_failed",
            "logs.transactions_failing",
            "logs.homeserver_backoff",
            "ping.backoff",
            "delivery.stalled",
        ],
    },
    Cause {
        id: "wrong_domain",
        roots: &[
            "domain.mismatch",
            "namespace.wrong_domain",
            "homeserver.wrong_server",
        ],
        symptoms: &[
            "namespace.bot_not_covered",
            "namespace.ghosts_not_covered",
            "logs.register_rejected",
            "logs.invalid_localpart",
        ],
    },
    Cause {
        id: "bot_outside_namespace",
        roots: &["namespace.bot_not_covered", "namespace.localpart_only"],
        symptoms: &["logs.register_rejected"],
    },
    Cause {
        id: "namespace_conflict",
        roots: &["namespace.exclusive_conflict"],
        symptoms: &["logs.register_rejected", "logs.invalid_localpart"],
    },
    Cause {
        id: "ghosts_outside_namespace",
        roots: &["namespace.ghosts_not_covered"],
        symptoms: &["logs.invalid_localpart"],
    },
    Cause {
        id: "foreign_database",
        roots: &["database.foreign_tables"],
        symptoms: &["logs.foreign_tables", "logs.db_not_owned"],
    },
    Cause {
        id: "homeserver_outdated",
        roots: &["homeserver.outdated"],
        symptoms: &["logs.homeserver_outdated"],
    },
    Cause {
        id: "media_unavailable",
        roots: &["homeserver.media_unavailable"],
        symptoms: &["logs.media_config_failed"],
    },
    Cause {
        id: "encryption_login",
        roots: &[
            "registration.msc4190_mismatch",
            "encryption.msc4190_required",
        ],
        symptoms: &["logs.appservice_login_unsupported"],
    },
];

/// One finding as evidence of a diagnosis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub check: String,
    pub status: Status,
    pub title: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    pub target: String,
    /// The cause's id, or the check id of a finding that stands alone.
    pub cause: String,
    pub status: Status,
    pub title: String,
    /// The findings behind it, the one naming the cause first.
    pub evidence: Vec<Evidence>,
    pub fix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
}

fn matches(pattern: &str, finding: &Finding) -> bool {
    match pattern.split_once(':') {
        Some((check, field)) => {
            finding.check == check
                && finding
                    .evidence
                    .get("field")
                    .and_then(|v| v.as_str())
                    .is_some_and(|named| named.contains(field))
        }
        None => finding.check == pattern,
    }
}

fn is_problem(finding: &Finding) -> bool {
    matches!(finding.status, Status::Fail | Status::Warn | Status::Error)
}

/// Groups the problems among `findings` into diagnoses, most blocking first.
pub fn diagnose(findings: &[Finding]) -> Vec<Diagnosis> {
    let mut targets: Vec<&str> = Vec::new();
    for finding in findings {
        if !targets.contains(&finding.target.as_str()) {
            targets.push(&finding.target);
        }
    }
    let mut ranked: Vec<(usize, usize, Diagnosis)> = Vec::new();
    for (target_rank, target) in targets.iter().enumerate() {
        let problems: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.target == *target && is_problem(f))
            .collect();
        for (cause_rank, diagnosis) in diagnose_target(&problems) {
            ranked.push((cause_rank, target_rank, diagnosis));
        }
    }
    ranked.sort_by_key(|(cause, target, d)| (severity(d.status), *cause, *target));
    ranked.into_iter().map(|(_, _, d)| d).collect()
}

/// Fail and error first, then warnings.
fn severity(status: Status) -> u8 {
    match status {
        Status::Fail | Status::Error => 0,
        _ => 1,
    }
}

/// The unclaimed findings that match `patterns`, in pattern order, now claimed.
fn claim<'a>(
    problems: &[&'a Finding],
    claimed: &mut [bool],
    patterns: &[&str],
) -> Vec<&'a Finding> {
    let mut members = Vec::new();
    for pattern in patterns {
        for (i, finding) in problems.iter().enumerate() {
            if !claimed[i] && matches(pattern, finding) {
                claimed[i] = true;
                members.push(*finding);
            }
        }
    }
    members
}

/// One target's diagnoses with their cause's rank (alone: after every cause).
fn diagnose_target(problems: &[&Finding]) -> Vec<(usize, Diagnosis)> {
    let mut claimed = vec![false; problems.len()];
    let mut out = Vec::new();
    // Causes whose root failed take their symptoms first…
    for (rank, cause) in CAUSES.iter().enumerate() {
        let roots = claim(problems, &mut claimed, cause.roots);
        if !roots.is_empty() {
            let symptoms = claim(problems, &mut claimed, cause.symptoms);
            out.push((rank, build(cause.id, roots.into_iter().chain(symptoms))));
        }
    }
    // …then symptoms whose cause is not named go to the cause that explains
    // most of them, led by the first (the cause is then that check's)…
    loop {
        let unclaimed = |cause: &Cause| {
            problems
                .iter()
                .enumerate()
                .filter(|(i, f)| !claimed[*i] && cause.symptoms.iter().any(|p| matches(p, f)))
                .count()
        };
        let Some((rank, cause)) = CAUSES
            .iter()
            .enumerate()
            .filter(|(_, cause)| unclaimed(cause) > 0)
            .max_by_key(|(rank, cause)| (unclaimed(cause), std::cmp::Reverse(*rank)))
        else {
            break;
        };
        let symptoms = claim(problems, &mut claimed, cause.symptoms);
        out.push((rank, build(&symptoms[0].check, symptoms.iter().copied())));
    }
    // …and every other finding stands alone.
    for (i, finding) in problems.iter().enumerate() {
        if !claimed[i] {
            out.push((
                CAUSES.len(),
                build(&finding.check, std::iter::once(*finding)),
            ));
        }
    }
    out
}

/// The worst of the members: a failure, else a check error, else a warning.
fn worst(members: &[&Finding]) -> Status {
    [Status::Fail, Status::Error, Status::Warn]
        .into_iter()
        .find(|status| members.iter().any(|f| f.status == *status))
        .unwrap_or(Status::Warn)
}

fn build<'a>(cause: &str, members: impl Iterator<Item = &'a Finding>) -> Diagnosis {
    let members: Vec<&Finding> = members.collect();
    let lead = members[0];
    Diagnosis {
        target: lead.target.clone(),
        cause: cause.to_owned(),
        status: worst(&members),
        title: lead.title.clone(),
        evidence: members
            .iter()
            .map(|f| Evidence {
                check: f.check.clone(),
                status: f.status,
                title: f.title.clone(),
                detail: f.detail.clone(),
            })
            .collect(),
        fix: lead.fix.clone(),
        faq: members.iter().find_map(|f| f.faq.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(target: &str, check: &str, status: Status, field: Option<&str>) -> Finding {
        let mut evidence = serde_json::Map::new();
        if let Some(field) = field {
            evidence.insert("field".into(), field.into());
        }
        Finding {
            check: check.into(),
            target: target.into(),
            status,
            title: format!("{check} title"),
            detail: String::new(),
            evidence,
            fix: vec![format!("{check} fix")],
            faq: None,
            resolved_at: None,
        }
    }

    #[test]
    fn one_wrong_hs_token_is_one_diagnosis() {
        let findings = [
            finding("tg", "tokens.mismatch", Status::Fail, Some("hs_token")),
            finding("tg", "tokens.hs_token_rejected", Status::Fail, None),
            finding("tg", "logs.hs_token_rejected", Status::Fail, None),
            finding("tg", "ping.connection_failed", Status::Pass, None),
        ];
        let diagnoses = diagnose(&findings);
        assert_eq!(diagnoses.len(), 1, "{diagnoses:#?}");
        let d = &diagnoses[0];
        assert_eq!(d.cause, "hs_token_refused");
        assert_eq!(d.title, "tokens.mismatch title");
        assert_eq!(d.fix, ["tokens.mismatch fix"]);
        let checks: Vec<&str> = d.evidence.iter().map(|e| e.check.as_str()).collect();
        assert_eq!(
            checks,
            [
                "tokens.mismatch",
                "tokens.hs_token_rejected",
                "logs.hs_token_rejected"
            ]
        );
    }

    #[test]
    fn the_token_named_decides_the_cause() {
        let findings = [
            finding("tg", "tokens.mismatch", Status::Fail, Some("as_token")),
            finding("tg", "tokens.as_token_rejected", Status::Fail, None),
        ];
        assert_eq!(diagnose(&findings)[0].cause, "as_token_unknown");
    }

    #[test]
    fn symptoms_without_a_named_cause_are_led_by_the_first() {
        let findings = [
            finding("tg", "logs.as_token_rejected", Status::Fail, None),
            finding("tg", "tokens.as_token_rejected", Status::Fail, None),
        ];
        let diagnoses = diagnose(&findings);
        assert_eq!(diagnoses.len(), 1);
        assert_eq!(diagnoses[0].cause, "tokens.as_token_rejected");
    }

    #[test]
    fn separate_causes_stay_separate_and_are_ranked() {
        let findings = [
            finding("a", "encryption.self_sign_disabled", Status::Warn, None),
            finding("a", "database.foreign_tables", Status::Fail, None),
            finding("b", "homeserver.unreachable", Status::Fail, None),
            finding("b", "logs.foreign_tables", Status::Fail, None),
        ];
        let diagnoses = diagnose(&findings);
        let order: Vec<(&str, &str)> = diagnoses
            .iter()
            .map(|d| (d.target.as_str(), d.cause.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("b", "homeserver_unreachable"),
                ("a", "foreign_database"),
                ("b", "logs.foreign_tables"),
                ("a", "encryption.self_sign_disabled"),
            ]
        );
        assert_eq!(diagnoses[3].status, Status::Warn);
    }

    #[test]
    fn unnamed_causes_go_where_most_symptoms_point() {
        // A bridge that is down: the ping, the homeserver's backlog and its
        // log all say so; no file names a cause.
        let findings = [
            finding("tg", "ping.connection_failed", Status::Fail, None),
            finding("tg", "delivery.stalled", Status::Fail, None),
            finding("tg", "logs.transactions_failing", Status::Fail, None),
        ];
        let diagnoses = diagnose(&findings);
        assert_eq!(diagnoses.len(), 1, "{diagnoses:#?}");
        assert_eq!(diagnoses[0].cause, "ping.connection_failed");
    }

    #[test]
    fn a_healthy_run_has_no_diagnosis() {
        let findings = [
            finding("tg", "tokens.mismatch", Status::Pass, None),
            finding("tg", "database.unreachable", Status::Skip, None),
        ];
        assert!(diagnose(&findings).is_empty());
    }
}
