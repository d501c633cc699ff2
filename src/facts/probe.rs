//! Facts observed rather than read: live probes of the homeserver with each
//! target's own tokens (all targets at once, each bounded by the timeout),
//! then log windows and databases.

use std::time::Duration;

use super::{Facts, LiveFacts, TargetFacts, database, logs};
use crate::input::config::Config;
use crate::matrix::HomeserverClient;

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Probes the homeserver as `target`, without changing anything on it.
pub async fn probe_target(
    facts_domain: &str,
    default_address: &str,
    target: &TargetFacts,
) -> LiveFacts {
    let address = target
        .config()
        .and_then(|c| c.homeserver_address.as_ref())
        .map(|f| f.value.clone())
        .unwrap_or_else(|| default_address.to_owned());
    let client = HomeserverClient::new(&address, PROBE_TIMEOUT);
    let mut live = LiveFacts {
        address: address.clone(),
        ..LiveFacts::default()
    };
    let versions = client.versions().await;
    let Ok(found) = &versions else {
        live.versions = Some(versions);
        return live;
    };
    let Some(as_token) = target.as_token() else {
        live.versions = Some(versions);
        return live;
    };
    let domain = target
        .config()
        .and_then(|c| c.homeserver_domain.as_ref())
        .map(|f| f.value.as_str())
        .unwrap_or(facts_domain);
    let bot = target
        .config()
        .and_then(|c| c.bot_username.as_ref())
        .and_then(|b| ruma::UserId::parse(format!("@{}:{domain}", b.value)).ok());
    let sender = client.whoami(found, as_token, None);
    let as_bot = async {
        match &bot {
            Some(bot) => Some(client.whoami(found, as_token, Some(bot)).await),
            None => None,
        }
    };
    let ping = async {
        match target.appservice_id() {
            Some(id) => Some(client.ping_appservice(found, as_token, id).await),
            None => None,
        }
    };
    let media = client.media_config(found, as_token);
    let (sender, as_bot, ping, media) = tokio::join!(sender, as_bot, ping, media);
    live.media_config = Some(media);
    live.whoami_sender = Some(sender);
    live.whoami_bot = as_bot;
    live.ping = ping;
    live.versions = Some(versions);
    live
}

impl Facts {
    /// Adds what is observed rather than read from config files: live
    /// probes (unless `offline`; all targets at once), logs, databases.
    pub async fn observe(&mut self, config: &Config, offline: bool) {
        self.observe_showing(config, offline, &indicatif::ProgressBar::hidden())
            .await;
    }

    /// [`Facts::observe`], counting targets done on `bar` phase by phase
    /// (a hidden bar shows nothing).
    pub async fn observe_showing(
        &mut self,
        config: &Config,
        offline: bool,
        bar: &indicatif::ProgressBar,
    ) {
        use futures::FutureExt;
        let count = self.targets.len() as u64;
        let phase = |what: &'static str| {
            bar.set_message(what);
            bar.reset();
            bar.set_length(count);
        };
        if !offline {
            phase("probing");
            let client = HomeserverClient::new(&config.homeserver.address, PROBE_TIMEOUT);
            let probes = futures::future::join_all(self.targets.iter().map(|t| {
                probe_target(&config.homeserver.domain, &config.homeserver.address, t)
                    .inspect(|_| bar.inc(1))
            }));
            let (versions, software, probes) =
                tokio::join!(client.versions(), client.software(), probes);
            for (target, live) in self.targets.iter_mut().zip(probes) {
                target.live = Some(live);
            }
            self.homeserver.versions = Some(versions);
            self.homeserver.software = software;
        }
        phase("reading logs");
        logs::scan_logs(config, &mut self.targets);
        if let Some(Ok(hs)) = &self.homeserver.config
            && let Some(uri) = &hs.database_uri
        {
            self.homeserver.delivery = Some(database::delivery_states(uri).await);
        }
        phase("reading databases");
        let databases = futures::future::join_all(
            self.targets
                .iter()
                .map(|t| database::inspect(t).inspect(|_| bar.inc(1))),
        )
        .await;
        for (target, database) in self.targets.iter_mut().zip(databases) {
            target.database = database;
        }
        bar.finish_and_clear();
    }
}

/// Every fact of every target, observed (the support packet's view).
pub async fn gather(config: &Config, offline: bool, bar: &indicatif::ProgressBar) -> Facts {
    let mut facts = Facts::load(config);
    facts.observe_showing(config, offline, bar).await;
    facts
}
