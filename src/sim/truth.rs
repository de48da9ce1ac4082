//! Ground truth: when the simulator really sent each chunk of each request, on the
//! shared [`crate::clock`], so measured and true times can be compared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// At most this many requests' truths are kept (the first ones of a run).
pub const MAX_ENTRIES: usize = 200_000;

/// Simulators in this process that keep their truth, by listening port.
static REGISTRY: Mutex<Vec<(u16, Weak<TruthLog>)>> = Mutex::new(Vec::new());

/// Makes `log` findable by [`lookup`] for a simulator listening on loopback `port`.
pub fn register(port: u16, log: &Arc<TruthLog>) {
    let mut r = REGISTRY.lock().unwrap();
    r.retain(|(p, w)| *p != port && w.strong_count() > 0);
    r.push((port, Arc::downgrade(log)));
}

/// The truth log of an in-process simulator at `host:port`, if one keeps it.
pub fn lookup(host: &str, port: u16) -> Option<Arc<TruthLog>> {
    if !matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]") {
        return None;
    }
    let r = REGISTRY.lock().unwrap();
    r.iter()
        .find(|(p, _)| *p == port)
        .and_then(|(_, w)| w.upgrade())
        .filter(|l| l.enabled())
}

/// What the simulator did for one request.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// When the request (head and body) was received.
    pub received_ns: u64,
    /// When each token-bearing chunk was handed to the connection for writing.
    pub chunk_ns: Vec<u64>,
    /// Tokens in each chunk.
    pub chunk_tokens: Vec<u32>,
    /// With the step engine: when the step that generated each chunk's last token
    /// ended (an `end_ns` of the engine's step log).
    pub step_end_ns: Vec<u64>,
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
            let mut m = self.map.lock().unwrap();
            if m.len() < MAX_ENTRIES {
                m.insert(id, t);
            }
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

    /// Removes and returns the entries whose id starts with `prefix` (what
    /// `GET /moonbench/truth` serves to a client in another process).
    pub fn take_prefix(&self, prefix: &str) -> Vec<(String, Truth)> {
        let mut m = self.map.lock().unwrap();
        let ids: Vec<String> = m
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        ids.into_iter()
            .filter_map(|id| m.remove(&id).map(|t| (id, t)))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.map.lock().unwrap().clear();
    }
}
