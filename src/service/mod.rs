//! On top of the engine, the running doctor: `run`, the appservice API, the
//! bot, the store, the startup self-check, and `generate-registration`; the
//! bot's private working folder for packets.

pub mod appservice;
pub mod bot;
pub mod delivery;
pub mod device;
pub mod generate;
pub mod http;
pub mod log_limit;
pub mod metrics;
pub mod run;
pub mod selfcheck;
pub mod store;
pub mod watch;
pub mod workdir;
