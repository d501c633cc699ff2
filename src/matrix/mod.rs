//! Beside input, the homeserver's client-server API: raw probes (`client.rs`) and the
//! bot's calls as the appservice (`as_user.rs`).
//!
//! Requests are built with ruma (so paths and appservice identity follow the
//! spec), sent with reqwest, and the answer is kept raw: status, errcode,
//! error text. The checks need the exact answer (`M_UNKNOWN_TOKEN` vs
//! `M_FORBIDDEN` "not registered" vs a proxy's HTML page), which a typed
//! client would fold into one error.

mod answer;
mod as_user;
mod client;

pub use answer::{Answer, ConnectError, ServerSoftware, Versions, VersionsError};
pub use as_user::AsUser;
pub use client::{Chunks, HomeserverClient, read_capped, too_large};
