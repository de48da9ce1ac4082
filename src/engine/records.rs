//! Per-request records as JSON: one object per request, times in seconds relative
//! to the run's start. Written as JSONL while a run goes (so a crash loses nothing
//! already measured) and given to Lua by `res:records()`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::clock;
use crate::metrics::RequestRecord;

fn rel(t: u64, t0: u64) -> f64 {
    (t as f64 - t0 as f64) / 1e9
}

/// The record as a JSON object, times in seconds from `t0_ns`.
pub fn record_json(r: &RequestRecord, t0_ns: u64) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), json!(r.index));
    m.insert("request_id".into(), json!(r.request_id));
    m.insert("warmup".into(), json!(r.warmup));
    m.insert("success".into(), json!(r.success()));
    m.insert("status".into(), json!(r.status));
    m.insert(
        "error_kind".into(),
        json!(r.error.as_ref().map(|e| e.count_key(r.status))),
    );
    m.insert(
        "error".into(),
        json!(r.error.as_ref().map(|e| e.message.clone())),
    );
    m.insert("scheduled_time".into(), json!(rel(r.scheduled_ns, t0_ns)));
    m.insert("dispatch_time".into(), json!(rel(r.dispatched_ns, t0_ns)));
    m.insert("start_time".into(), json!(rel(r.sent_ns, t0_ns)));
    m.insert("end_time".into(), json!(rel(r.end_ns, t0_ns)));
    m.insert("ttft".into(), json!(r.ttft()));
    m.insert("ttfa".into(), json!(r.ttfa()));
    m.insert("reasoning_tokens".into(), json!(r.reasoning_tokens));
    if let Some(u) = &r.user {
        m.insert("user".into(), json!(u.user));
        m.insert("conversation".into(), json!(u.conversation));
        m.insert("turn".into(), json!(u.turn));
    }
    m.insert("tpot".into(), json!(r.tpot()));
    m.insert("e2el".into(), json!(r.e2el()));
    m.insert("schedule_lag".into(), json!(r.schedule_lag()));
    m.insert("prompt_tokens".into(), json!(r.prompt_tokens));
    m.insert("server_prompt_tokens".into(), json!(r.server_prompt_tokens));
    m.insert("output_tokens".into(), json!(r.output_tokens));
    m.insert("server_output_tokens".into(), json!(r.server_output_tokens));
    m.insert("output_tokens_source".into(), json!(r.output_tokens_source));
    m.insert(
        "expected_output_tokens".into(),
        json!(r.expected_output_tokens),
    );
    m.insert("streamed".into(), json!(r.streamed));
    m.insert("new_connection".into(), json!(r.new_connection));
    if let Some(st) = &r.server_timing {
        m.insert("server_timing".into(), json!(st));
    }
    m.insert(
        "chunk_times".into(),
        json!(
            r.chunks
                .times()
                .map(|t| rel(t, r.sent_ns))
                .collect::<Vec<_>>()
        ),
    );
    m.insert(
        "chunk_tokens".into(),
        json!(r.chunks.tokens().collect::<Vec<_>>()),
    );
    m.insert("itls".into(), json!(r.itls()));
    m.insert("text".into(), json!(r.text));
    Value::Object(m)
}

/// Appends records to a JSONL file as they finish.
pub struct RecordWriter {
    out: BufWriter<File>,
    t0_ns: u64,
    last_flush: u64,
}

impl RecordWriter {
    /// Creates (truncates) `path`, making its directory if needed.
    pub fn create(path: &Path, t0_ns: u64) -> Result<RecordWriter, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let f = File::create(path)
            .map_err(|e| format!("cannot write records file {}: {e}", path.display()))?;
        Ok(RecordWriter {
            out: BufWriter::new(f),
            t0_ns,
            last_flush: clock::now_ns(),
        })
    }

    /// Sets the time origin for records written from now on.
    pub fn set_t0(&mut self, t0_ns: u64) {
        self.t0_ns = t0_ns;
    }

    /// Writes one record (flushing at most every 200 ms).
    pub fn write(&mut self, r: &RequestRecord) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, &record_json(r, self.t0_ns))?;
        self.out.write_all(b"\n")?;
        let now = clock::now_ns();
        if now - self.last_flush > 200_000_000 {
            self.out.flush()?;
            self.last_flush = now;
        }
        Ok(())
    }

    /// Flushes everything written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The records file sees warm-ups too (flagged), with times from the run's t0.
impl super::measure::Sink for RecordWriter {
    fn name(&self) -> &'static str {
        "writing the records file"
    }
    fn wants_warmups(&self) -> bool {
        true
    }
    fn start(&mut self, t0_ns: u64) {
        self.set_t0(t0_ns);
    }
    fn record(&mut self, rec: &RequestRecord) -> Result<(), String> {
        self.write(rec).map_err(|e| e.to_string())
    }
    fn finish(&mut self) {
        let _ = self.flush();
    }
}
