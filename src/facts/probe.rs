//! Facts observed rather than read: live probes of the homeserver with each
//! target's own tokens (all targets at once, each bounded by the timeout),
//! then log windows and databases.

use std::time::Duration;

use super::deployment::Names;
use super::{Facts, LiveFacts, TargetFacts, database, logs};
use crate::input::config::Config;
use crate::matrix::HomeserverClient;

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The address `target` reaches its homeserver at: its config's
/// `homeserver.address`, else the doctor's.
pub fn homeserver_address_of(target: &TargetFacts, default_address: &str) -> String {
    target
        .config()
        .and_then(|c| c.homeserver_address.as_ref())
        .map(|f| f.value.clone())
        .unwrap_or_else(|| default_address.to_owned())
}

/// Probes the homeserver at `address` as `target`, without changing anything on it.
pub async fn probe_target(facts_domain: &str, address: String, target: &TargetFacts) -> LiveFacts {
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
            let addresses = self.addresses_from_here(config).await;
            let probes = futures::future::join_all(self.targets.iter().zip(addresses).map(
                |(t, address)| {
                    probe_target(&config.homeserver.domain, address, t).inspect(|_| bar.inc(1))
                },
            ));
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
            self.homeserver.delivery =
                Some(database::delivery_states(uri, &config.homeserver.deployment).await);
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

impl Facts {
    /// The homeserver address each target is probed at: a compose service
    /// name the doctor cannot resolve is reached through its published
    /// port, else at the homeserver's own address; each such name (also a
    /// registration's `url`, which only the homeserver calls) is kept in
    /// the target's `names_inside`.
    async fn addresses_from_here(&mut self, config: &Config) -> Vec<String> {
        let written: Vec<String> = self
            .targets
            .iter()
            .map(|t| homeserver_address_of(t, &config.homeserver.address))
            .collect();
        let Some(project) = &config.compose else {
            return written;
        };
        let urls: Vec<&str> = self
            .targets
            .iter()
            .filter_map(|t| t.registration()?.url.as_ref()?.as_deref())
            .chain(written.iter().map(String::as_str))
            .collect();
        let names = Names::resolve(project, &urls).await;
        let mut addresses = Vec::new();
        for (target, address) in self.targets.iter_mut().zip(written) {
            let from_config = target.config().map(|c| {
                let at = c.homeserver_address.as_ref().map(|f| c.locate(f));
                at.unwrap_or_default()
            });
            let mut probed = address.clone();
            if let Some((via, mut fact)) = from_config.and_then(|at| names.inside(&address, at)) {
                // No published port: the homeserver's own address instead.
                let homeserver = &config.homeserver.address;
                fact.via.get_or_insert_with(|| homeserver.clone());
                probed = via.unwrap_or_else(|| homeserver.clone());
                target.names_inside.push(fact);
            }
            let registration_url = target.registration().and_then(|r| r.url.clone().flatten());
            if let Some(url) = registration_url {
                let at = format!("{} (url)", target.registration_path.display());
                if let Some((_, mut fact)) = names.inside(&url, at) {
                    // Only the homeserver calls it: its ping is the authority.
                    fact.via = None;
                    target.names_inside.push(fact);
                }
            }
            addresses.push(probed);
        }
        addresses
    }
}

/// Every fact of every target, observed (the support packet's view).
pub async fn gather(config: &Config, offline: bool, bar: &indicatif::ProgressBar) -> Facts {
    let mut facts = Facts::load(config);
    facts.observe_showing(config, offline, bar).await;
    facts
}
