//! Does the homeserver actually send this appservice its transactions?

use super::{Check, Context, Verdict};
use crate::facts::DeliveryProbe;

pub const CHECKS: &[Check] = &[
    Check {
        id: "delivery.worker_missing",
        run: worker_missing,
    },
    Check {
        id: "delivery.stalled",
        run: stalled,
    },
];

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
            "Check the spelling: it must equal the `worker_name` of a worker that runs (`systemctl status 'matrix-synapse-worker@*'`).".to_owned(),
            "Or remove `notify_appservices_from_worker` so the main process sends transactions.".to_owned(),
            "Restart the homeserver and its workers.".to_owned(),
        ])
}

/// What to do when the homeserver holds transactions back.
const STALLED_FIX: [&str; 4] = [
    "Look in the homeserver log for `push_bulk` errors and `Scheduling retries` lines naming this appservice: they say why sending fails.",
    "Check that the appservice listens at the registration's `url` and answers (`bridge-doctor check` runs the ping).",
    "With workers, check that the worker named in `notify_appservices_from_worker` runs.",
    "Once it is reachable, a ping (`bridge-doctor check`, or restarting the bridge) makes the homeserver retry at once.",
];

fn stalled(ctx: &Context) -> Verdict {
    let probe = ctx
        .target
        .live
        .as_ref()
        .and_then(|l| l.delivery_probe.as_ref());
    match probe {
        Some(DeliveryProbe::Delivered { milliseconds }) => {
            return Verdict::pass(format!(
                "an event the bot sent came back in a transaction after {milliseconds} ms"
            ));
        }
        Some(DeliveryProbe::NotDelivered { waited_seconds }) => {
            return Verdict::fail("the homeserver does not deliver events to the doctor")
                .detail(format!("The bot sent an event into its own probe room; no transaction carried it within {waited_seconds} s, although the homeserver accepted the event (and the ping may well work)."))
                .fix(STALLED_FIX);
        }
        Some(DeliveryProbe::NotSent(reason)) => {
            return Verdict::warn("the delivery probe could not be sent").detail(reason.clone());
        }
        None => {}
    }
    let Some(id) = ctx.target.appservice_id() else {
        return Verdict::skip("the registration has no id");
    };
    let states = match &ctx.facts.homeserver.delivery {
        None => {
            return Verdict::skip(
                "needs the homeserver config with its database to read the delivery state",
            );
        }
        Some(Err(error)) => {
            return Verdict::skip(format!(
                "the homeserver's database could not be read: {error}"
            ));
        }
        Some(Ok(states)) => states,
    };
    let Some(state) = states.get(id).filter(|s| s.down && s.pending > 0) else {
        return Verdict::pass(
            "the homeserver has no failing deliveries on record for this appservice",
        );
    };
    Verdict::fail("the homeserver holds back transactions for this appservice")
        .detail(format!(
            "The homeserver's database marks `{id}` as down with {} transaction(s) not delivered: sending failed, and it retries with a growing delay while new events wait behind.",
            state.pending
        ))
        .evidence("pending_transactions", state.pending)
        .fix(STALLED_FIX)
}
