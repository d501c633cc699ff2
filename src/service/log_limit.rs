//! Logging of what anyone who reaches the port can cause at will (refused
//! requests, refused connections, accept failures): the first few of each
//! interval are logged in full, the rest counted and summed up in one line
//! when the interval ends, and attacker-chosen text is cut short, so a
//! flood cannot fill the disk.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use std::time::Instant;

/// Occurrences logged in full per interval.
const FULL_LINES: u32 = 5;

/// The interval the full lines are counted in.
const INTERVAL: Duration = Duration::from_secs(10);

/// The longest text from a request that goes into a log line, in bytes.
pub const TEXT_BOUND: usize = 200;

/// One kind of occurrence whose log lines are rate-limited; a `static`,
/// shared by every connection.
pub struct LogLimit {
    /// What is counted, as the summary line names it ("rejected requests").
    what: &'static str,
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    /// Left out of the log since the interval started.
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(what: &'static str) -> LogLimit {
        LogLimit {
            what,
            window: Mutex::new(Window {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this occurrence may be logged in full. When not, it is
    /// counted, and a line at the end of the interval says how many were
    /// left out. Call from within the tokio runtime.
    pub fn admit(&'static self) -> bool {
        match self.decide(Instant::now()) {
            Decision::Log => true,
            Decision::Count { summary_at } => {
                if let Some(end) = summary_at {
                    tokio::spawn(self.summarise_at(end));
                }
                false
            }
        }
    }

    /// What to do with an occurrence at `now`.
    fn decide(&self, now: Instant) -> Decision {
        let mut window = self.lock();
        let expired = window
            .started
            .is_none_or(|started| now >= started + INTERVAL);
        // With occurrences left out, the summary ends the interval.
        if expired && window.suppressed == 0 {
            *window = Window {
                started: Some(now),
                ..Window::default()
            };
        }
        if window.logged < FULL_LINES {
            window.logged += 1;
            return Decision::Log;
        }
        window.suppressed += 1;
        Decision::Count {
            summary_at: (window.suppressed == 1).then(|| window.started.unwrap_or(now) + INTERVAL),
        }
    }

    /// Ends the interval: how many occurrences were left out in it.
    fn close_interval(&self) -> u64 {
        std::mem::take(&mut *self.lock()).suppressed
    }

    /// At `end`, logs how many occurrences were left out and starts a new
    /// interval.
    async fn summarise_at(&'static self, end: Instant) {
        tokio::time::sleep_until(end.into()).await;
        let suppressed = self.close_interval();
        tracing::warn!(
            "{suppressed} more {} in the last {} s (only the first {FULL_LINES} of every {} s are logged in full)",
            self.what,
            INTERVAL.as_secs(),
            INTERVAL.as_secs()
        );
    }
}

enum Decision {
    Log,
    /// Left out; the first one left out in an interval says when to sum up.
    Count {
        summary_at: Option<Instant>,
    },
}

/// `text` cut to at most [`TEXT_BOUND`] bytes (at a character boundary),
/// saying how long it was when cut: for text a client chose.
pub fn bounded(text: &str) -> Cow<'_, str> {
    if text.len() <= TEXT_BOUND {
        return Cow::Borrowed(text);
    }
    let mut end = TEXT_BOUND;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_per_interval_then_one_summary_then_a_new_interval() {
        let limit = LogLimit::new("tests");
        let start = Instant::now();
        let decisions: Vec<Decision> = (0..100).map(|_| limit.decide(start)).collect();
        let logged = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Log))
            .count();
        assert_eq!(logged, FULL_LINES as usize);
        let summaries: Vec<Instant> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Count { summary_at } => *summary_at,
                Decision::Log => None,
            })
            .collect();
        assert_eq!(summaries, [start + INTERVAL], "one summary, at the end");
        // Until the summary closes it, the interval goes on counting.
        let later = start + INTERVAL * 2;
        assert!(matches!(
            limit.decide(later),
            Decision::Count { summary_at: None }
        ));
        assert_eq!(limit.close_interval(), 96);
        assert!(matches!(limit.decide(later), Decision::Log));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("/short"), "/short");
        let long = "é".repeat(30_000);
        let cut = bounded(&long);
        assert!(cut.len() < TEXT_BOUND + 30, "{}", cut.len());
        assert!(cut.ends_with("… (60000 bytes)"), "{cut}");
    }
}
