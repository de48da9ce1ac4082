//! Ground truth: when the simulator really sent each chunk of each request, on the
//! shared [`crate::clock`], so measured and true times can be compared.

use std::collections::HashMap;
use std::sync::Mutex;

/// What the simulator did for one request.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// When the request (head and body) was received.
    pub received_ns: u64,
    /// When each token-bearing chunk was handed to the connection for writing.
    pub chunk_ns: Vec<u64>,
    /// Tokens in each chunk.
    pub chunk_tokens: Vec<u32>,
}

/// Truths by request id (the `x-request-id` header), kept only when enabled.
#[derive(Debug, Default)]
pub struct TruthLog {
    enabled: bool,
    map: Mutex<HashMap<String, Truth>>,
}

impl TruthLog {
    /// A log that keeps entries if `enabled`.
    pub fn new(enabled: bool) -> TruthLog {
        TruthLog {
            enabled,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Whether entries are kept.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Stores the truth of request `id`.
    pub fn insert(&self, id: String, t: Truth) {
        if self.enabled {
            self.map.lock().unwrap().insert(id, t);
        }
    }

    /// The truth of request `id`, if kept.
    pub fn get(&self, id: &str) -> Option<Truth> {
        self.map.lock().unwrap().get(id).cloned()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.map.lock().unwrap().clear();
    }
}
