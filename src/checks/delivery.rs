//! Does the homeserver actually send this appservice its transactions?

use super::{Check, Context, Verdict};
use crate::facts::DeliveryProbe;
use crate::facts::database::{BACKLOG_COUNT_LIMIT, Backlog};

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
    let delivery = match &ctx.facts.homeserver.delivery {
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
        Some(Ok(delivery)) => delivery,
    };
    if let Some(verdict) = backlog_stalled(ctx, delivery.backlog.as_ref()) {
        return verdict;
    }
    let Some(state) = delivery.states.get(id).filter(|s| s.down && s.pending > 0) else {
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

/// Events wait this long for the appservice sender before it is stalled:
/// a busy sender is seconds behind, a stopped one never catches up.
const BACKLOG_GRACE_MS: i64 = 60_000;

/// The appservice sender stopped going through events: nothing is even
/// made into a transaction, so the appservice state stays `up` with
/// nothing pending while no bridge receives anything.
fn backlog_stalled(ctx: &Context, backlog: Option<&Backlog>) -> Option<Verdict> {
    let backlog = backlog.filter(|b| b.waiting > 0)?;
    let waited_ms = backlog.oldest_waited_ms?;
    if waited_ms < BACKLOG_GRACE_MS {
        return None;
    }
    let sender = match ctx
        .facts
        .homeserver
        .config
        .as_ref()
        .and_then(|c| c.as_ref().ok())
    {
        Some(hs) => match &hs.appservice_worker {
            Some(worker) => format!(
                "the worker `{worker}` (`notify_appservices_from_worker` in {})",
                hs.path.display()
            ),
            None => "the homeserver's main process".to_owned(),
        },
        None => "the homeserver's appservice sender".to_owned(),
    };
    let count = if backlog.waiting >= BACKLOG_COUNT_LIMIT {
        format!("{BACKLOG_COUNT_LIMIT} or more")
    } else {
        backlog.waiting.to_string()
    };
    Some(
        Verdict::fail("events wait for the homeserver's appservice sender, which does not go through them")
            .detail(format!(
                "{count} event(s) wait past the appservice stream position in the homeserver's database, the oldest for {} s. {sender} hands events to every appservice; while it stands still no transaction is made, so the appservice looks `up` with nothing pending and receives nothing.",
                waited_ms / 1000
            ))
            .evidence("waiting_events", backlog.waiting)
            .evidence("oldest_waiting_seconds", waited_ms / 1000)
            .fix([
                format!("Check that {sender} runs and is connected to the main process (Redis replication for workers); its log shows errors."),
                "If `notify_appservices_from_worker` names a worker that is not running, start it, or remove the option so the main process sends transactions; restart the homeserver.".to_owned(),
            ])
    )
}
