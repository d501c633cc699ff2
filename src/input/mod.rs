//! Stage 1, input: files read into typed values, every problem kept with
//! its file, line and column. No network, no checks.

pub mod bridge;
pub mod compose;
pub mod config;
pub mod fields;
pub mod homeserver;
pub mod log_source;
pub mod registration;
pub mod safe_paths;
pub mod scalars;
pub mod secrets;
pub mod yaml;
