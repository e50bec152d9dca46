//! What a server under test logged, kept for the access-log checks.

use std::sync::{Arc, Mutex};

/// Lines from a server's output, shared with the task that reads them.
#[derive(Clone, Default)]
pub struct LogLines(Arc<Mutex<Vec<String>>>);

impl LogLines {
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The access records: JSON objects whose `message` is `access`,
    /// wherever they start in a line (hosts prefix what they forward).
    pub fn access_records(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| {
                // The object, then whatever follows it (a host's colour codes).
                let from = &l[l.find('{')?..];
                let mut objects = serde_json::Deserializer::from_str(from).into_iter();
                let v: serde_json::Value = objects.next()?.ok()?;
                (v["message"] == "access").then_some(v)
            })
            .collect()
    }
}
