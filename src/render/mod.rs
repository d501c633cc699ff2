//! Stage 4, render: every way a report or finding is shown. A new output
//! format is one new file here.

pub mod first_run;
pub mod json;
pub mod log_lines;
pub mod markdown;
pub mod matrix;
pub mod report;
pub mod terminal;
