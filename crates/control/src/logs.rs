//! App logs: console output and errors of every app, kept per app in memory and streamed to
//! followers. Every line carries the namespace, the app and the request id.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use api_types::LogEntry;
use deployment::AppKey;
use runtime::{AppLog, LogLine};
use tokio::sync::broadcast;

/// Lines kept per app for `terrarium logs`.
const LINES_PER_APP: usize = 1000;
/// Longer messages are cut, so one app cannot fill the server's memory through its log.
const MAX_MESSAGE_BYTES: usize = 8 * 1024;

pub struct LogHub {
    recent: Mutex<HashMap<AppKey, VecDeque<LogEntry>>>,
    live: broadcast::Sender<(AppKey, LogEntry)>,
}

impl Default for LogHub {
    fn default() -> LogHub {
        LogHub { recent: Mutex::new(HashMap::new()), live: broadcast::channel(4096).0 }
    }
}

impl LogHub {
    pub fn new() -> LogHub {
        LogHub::default()
    }

    /// The last `n` lines of one app, oldest first.
    pub fn tail(&self, app: &AppKey, n: usize) -> Vec<LogEntry> {
        let recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(lines) = recent.get(app) else {
            return Vec::new();
        };
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
    }

    /// New lines of every app as they are written; followers filter by app.
    pub fn subscribe(&self) -> broadcast::Receiver<(AppKey, LogEntry)> {
        self.live.subscribe()
    }

    /// Forgets a deleted app's lines.
    pub fn forget(&self, app: &AppKey) {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(app);
    }
}

impl AppLog for LogHub {
    fn write(&self, line: LogLine) {
        let mut message = line.message;
        if message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …(truncated)");
        }
        let entry = LogEntry {
            time: crate::now(),
            namespace: line.app.namespace.clone(),
            app: line.app.name.clone(),
            request_id: line.request_id,
            level: line.level.as_str().to_owned(),
            message,
        };
        {
            let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let lines = recent.entry(line.app.clone()).or_default();
            if lines.len() == LINES_PER_APP {
                lines.pop_front();
            }
            lines.push_back(entry.clone());
        }
        // No follower is not an error.
        let _ = self.live.send((line.app, entry));
    }
}

#[cfg(test)]
mod tests {
    use runtime::LogLevel;

    use super::*;

    fn line(app: &AppKey, message: String) -> LogLine {
        LogLine { app: app.clone(), request_id: "r1".into(), level: LogLevel::Info, message }
    }

    #[test]
    fn lines_are_kept_per_app_and_bounded() {
        let hub = LogHub::new();
        let a = AppKey::new("team-a", "app");
        let b = AppKey::new("team-b", "app");
        let mut follower = hub.subscribe();
        for i in 0..(LINES_PER_APP + 5) {
            hub.write(line(&a, format!("line {i}")));
        }
        hub.write(line(&b, "x".repeat(MAX_MESSAGE_BYTES + 10)));
        let tail = hub.tail(&a, 2);
        assert_eq!(tail.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["line 1003", "line 1004"]);
        assert_eq!(hub.tail(&a, usize::MAX).len(), LINES_PER_APP);
        assert!(hub.tail(&b, 1)[0].message.ends_with("(truncated)"));
        assert_eq!(hub.tail(&b, 1)[0].namespace, "team-b");
        assert_eq!(follower.try_recv().unwrap().0, a);
        hub.forget(&a);
        assert!(hub.tail(&a, 10).is_empty());
    }
}
