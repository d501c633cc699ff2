//! How the bridge is deployed: addresses only the compose network resolves.

use super::{Check, Context, Verdict};
use crate::input::config::Deployment;

pub const CHECKS: &[Check] = &[Check {
    id: "deployment.name_unresolvable",
    run: name_unresolvable,
}];

/// Never a problem: the address works where it is used (inside the
/// network); this says how the doctor reached it instead, so a probe from
/// here is not taken for the bridge's own view.
fn name_unresolvable(ctx: &Context) -> Verdict {
    let inside = &ctx.target.names_inside;
    if inside.is_empty() {
        return match (&ctx.target.deployment, &ctx.target.live) {
            (Deployment::Compose { .. }, Some(_)) => {
                Verdict::pass("every address in this bridge's files resolves from here")
            }
            (Deployment::Compose { .. }, None) => Verdict::skip("offline: no name was looked up"),
            _ => Verdict::skip("not run by docker-compose"),
        };
    }
    let lines: Vec<String> = inside
        .iter()
        .map(|name| match &name.via {
            Some(via) => format!(
                "`{}` resolves only inside the compose network; probed through {via}",
                name.name
            ),
            None => format!(
                "`{}` resolves only inside the compose network; not probed from here (the homeserver's ping, made from inside, says whether it answers)",
                name.name
            ),
        })
        .collect();
    let mut title = lines.clone();
    title.dedup();
    let detail: Vec<String> = inside
        .iter()
        .zip(&lines)
        .map(|(name, line)| format!("{}: {line}", name.written))
        .collect();
    let names: Vec<serde_json::Value> = inside
        .iter()
        .map(|n| serde_json::json!({"name": n.name, "service": n.service, "via": n.via, "written": n.written}))
        .collect();
    Verdict::info(title.join("; "))
        .detail(detail.join("\n"))
        .evidence("names", names)
}
