//! Does the homeserver actually send this appservice its transactions?

use super::{Check, Context, Verdict};

pub const CHECKS: &[Check] = &[Check {
    id: "delivery.worker_missing",
    run: worker_missing,
}];

/// Names Synapse gives its main process.
const MAIN_PROCESS: &[&str] = &["master", "main"];

fn worker_missing(ctx: &Context) -> Verdict {
    let Some(Ok(hs)) = &ctx.facts.homeserver.config else {
        return Verdict::skip("needs the homeserver config (`homeserver.config`)");
    };
    let Some(worker) = &hs.appservice_worker else {
        return Verdict::pass("the homeserver's main process sends appservice transactions");
    };
    let known = &ctx.facts.homeserver.worker_names;
    if MAIN_PROCESS.contains(&worker.as_str())
        || hs.instances.contains(worker)
        || known.contains(worker)
    {
        return Verdict::pass(format!(
            "transactions are sent by the worker {worker}, which is defined"
        ));
    }
    let verdict = if known.is_empty() {
        Verdict::warn(format!(
            "transactions are sent only by the worker {worker}, whose config the doctor did not find"
        ))
    } else {
        Verdict::fail(format!(
            "transactions are sent only by the worker {worker}, which is not defined"
        ))
    };
    let found = if known.is_empty() {
        "no worker configs".to_owned()
    } else {
        format!("the workers {}", known.join(", "))
    };
    verdict
        .detail(format!(
            "`notify_appservices_from_worker: {worker}` in {} hands every appservice transaction to that worker, and the main process sends none. The doctor found {found} beside the homeserver config and `instance_map` has {}. If no worker of that name runs, no bridge receives anything.",
            hs.path.display(),
            if hs.instances.is_empty() { "no entries".to_owned() } else { hs.instances.join(", ") }
        ))
        .evidence("field", "notify_appservices_from_worker")
        .fix([
            format!("Check the spelling: it must equal the `worker_name` of a worker that runs (`systemctl status 'matrix-synapse-worker@*'`)."),
            "Or remove `notify_appservices_from_worker` so the main process sends transactions.".to_owned(),
            "Restart the homeserver and its workers.".to_owned(),
        ])
}
