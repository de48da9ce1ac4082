//! `RequestRecord`: everything measured about one request. The only record type;
//! every summary, file and Lua table is derived from a list of these.

use serde::{Deserialize, Serialize};

pub use super::chunks::Chunks;

/// Why a request failed. The kind is what errors are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server answered with a non-200 HTTP status.
    Http,
    /// The request did not finish within its timeout.
    Timeout,
    /// Connecting failed, or the connection broke (reset, closed mid-stream).
    Connection,
    /// The server's TLS certificate was refused (unknown CA, expired, wrong name).
    Tls,
    /// The response did not follow the backend's protocol (bad SSE/JSON, wrong API).
    Protocol,
    /// The server reported an error object inside a 200 response or stream.
    Server,
    /// The run was interrupted (Ctrl-C / SIGTERM) while the request was in flight.
    Cancelled,
    /// The stream ended (EOF or reset) before the protocol's finish signal
    /// (`finish_reason`, `[DONE]`, TGI's final `generated_text`, llama.cpp's
    /// `stop`). vLLM's benchmark counts such a request as a success; moonbench
    /// does not.
    Incomplete,
}

impl ErrorKind {
    /// Stable lowercase name used in result files.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Http => "http",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Server => "server",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Incomplete => "incomplete",
        }
    }
}

/// A failed request's error: its kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// What happened, for a person to read.
    pub message: String,
}

impl RequestError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The key errors are counted under: `http_500`, `timeout`, `connection`, ...
    pub fn count_key(&self, status: u16) -> String {
        match self.kind {
            ErrorKind::Http => format!("http_{status}"),
            k => k.name().to_string(),
        }
    }
}

/// Where a record's output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens`.
    Usage,
    /// Our tokenizer's count of the generated text.
    #[default]
    Tokenizer,
}

/// One request, as measured. Times are [`crate::clock::now_ns`] values (nanoseconds
/// since the process epoch); use the methods for durations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "RecordIn")]
pub struct RequestRecord {
    /// Position of the request in the run's schedule (0-based).
    pub index: u64,
    /// Warm-up requests are kept but excluded from every statistic.
    pub warmup: bool,
    /// The `x-request-id` sent with the request.
    pub request_id: String,
    /// When the schedule intended the request to be sent.
    pub scheduled_ns: u64,
    /// When the dispatcher handed the request to the I/O runtime (after any
    /// concurrency-limit wait).
    pub dispatched_ns: u64,
    /// When sending started (just before connecting or writing): vLLM's `st`.
    pub sent_ns: u64,
    /// Each token-bearing chunk: its arrival time, taken when its bytes were read,
    /// and the output tokens it carried. Written to files as the two lists
    /// `chunk_ns` and `chunk_tokens`.
    #[serde(flatten)]
    pub chunks: Chunks,
    /// Byte offset in `text` where each chunk's text ends (one per chunk).
    pub chunk_text_end: Vec<u32>,
    /// When the response ended: the last byte read, or the moment of the error.
    pub end_ns: u64,
    /// Whether the response was streamed (SSE) rather than one JSON body.
    pub streamed: bool,
    /// Prompt tokens by our tokenizer (as built by the dataset).
    pub prompt_tokens: u32,
    /// `usage.prompt_tokens` as reported by the server, if it was.
    pub server_prompt_tokens: Option<u32>,
    /// Input sequences the request carried (a pooling batch's size, a rerank's
    /// documents); 0 is read as 1 (see [`RequestRecord::inputs`]).
    #[serde(default)]
    pub input_sequences: u32,
    /// Output tokens used for every metric.
    pub output_tokens: u32,
    /// `usage.completion_tokens` as reported by the server, if it was.
    pub server_output_tokens: Option<u32>,
    /// Where `output_tokens` came from.
    pub output_tokens_source: TokenSource,
    /// The output length the request asked for exactly (`max_tokens` with
    /// `ignore_eos`); `None` when the server may stop earlier.
    #[serde(default)]
    pub expected_output_tokens: Option<u32>,
    /// Whether this request had to open a new connection after the run's clock started.
    pub new_connection: bool,
    /// HTTP status (0 if no response head arrived).
    pub status: u16,
    /// `None` for a successful request.
    pub error: Option<RequestError>,
    /// The generated text (answer and reasoning, in arrival order).
    pub text: String,
    /// Arrival of the first answer token (after any reasoning), if one came.
    pub first_answer_ns: Option<u64>,
    /// Output tokens that were reasoning (`reasoning_content` / `reasoning`).
    pub reasoning_tokens: u32,
    /// Who sent it, in a virtual-users run (`mb.users`).
    pub user: Option<UserTag>,
    /// The server's own timing of the request, where it reports one (llama.cpp).
    pub server_timing: Option<ServerTiming>,
    /// Seconds of audio the request sent (0 for text): vLLM's `input_audio_duration`.
    pub audio_seconds: f64,
}

/// A record as files hold it, read without `#[serde(flatten)]`: serde reads a
/// flattened field by first buffering every key of the record into a generic
/// map, which was a third of `moonbench merge`'s time on a million records.
/// The same fields, `chunks` as the two lists it is written as.
#[derive(Deserialize)]
struct RecordIn {
    index: u64,
    warmup: bool,
    request_id: String,
    scheduled_ns: u64,
    dispatched_ns: u64,
    sent_ns: u64,
    #[serde(default)]
    chunk_ns: Vec<u64>,
    #[serde(default)]
    chunk_tokens: Vec<u32>,
    chunk_text_end: Vec<u32>,
    end_ns: u64,
    streamed: bool,
    prompt_tokens: u32,
    server_prompt_tokens: Option<u32>,
    #[serde(default)]
    input_sequences: u32,
    output_tokens: u32,
    server_output_tokens: Option<u32>,
    output_tokens_source: TokenSource,
    #[serde(default)]
    expected_output_tokens: Option<u32>,
    new_connection: bool,
    status: u16,
    error: Option<RequestError>,
    text: String,
    first_answer_ns: Option<u64>,
    reasoning_tokens: u32,
    user: Option<UserTag>,
    server_timing: Option<ServerTiming>,
    audio_seconds: f64,
}

impl From<RecordIn> for RequestRecord {
    fn from(r: RecordIn) -> RequestRecord {
        // Every field named (no `..`): a field added to the record and not read
        // here does not compile.
        RequestRecord {
            index: r.index,
            warmup: r.warmup,
            request_id: r.request_id,
            scheduled_ns: r.scheduled_ns,
            dispatched_ns: r.dispatched_ns,
            sent_ns: r.sent_ns,
            chunks: Chunks::from_lists(&r.chunk_ns, &r.chunk_tokens),
            chunk_text_end: r.chunk_text_end,
            end_ns: r.end_ns,
            streamed: r.streamed,
            prompt_tokens: r.prompt_tokens,
            server_prompt_tokens: r.server_prompt_tokens,
            input_sequences: r.input_sequences,
            output_tokens: r.output_tokens,
            server_output_tokens: r.server_output_tokens,
            output_tokens_source: r.output_tokens_source,
            expected_output_tokens: r.expected_output_tokens,
            new_connection: r.new_connection,
            status: r.status,
            error: r.error,
            text: r.text,
            first_answer_ns: r.first_answer_ns,
            reasoning_tokens: r.reasoning_tokens,
            user: r.user,
            server_timing: r.server_timing,
            audio_seconds: r.audio_seconds,
        }
    }
}

/// [`RequestRecord::itl_iter`]: each of [`RequestRecord`]'s gaps spread evenly
/// over its chunk's tokens (a chunk of k tokens after g seconds gives k values
/// of g/k). A plain state machine over the gaps: the summary walks it several
/// times over every token of a run, where a `flat_map` of `repeat_n` cost twice
/// as much.
#[derive(Debug, Clone)]
pub struct ItlIter<G> {
    gaps: G,
    value: f64,
    left: u32,
}

impl<G: Iterator<Item = (u64, u32)>> Iterator for ItlIter<G> {
    type Item = f64;

    #[inline]
    fn next(&mut self) -> Option<f64> {
        if self.left > 0 {
            self.left -= 1;
            return Some(self.value);
        }
        let (g, k) = self.gaps.next()?;
        self.value = crate::clock::secs(g) / k as f64;
        self.left = k - 1;
        Some(self.value)
    }
}

/// What a server reported about its own handling of one request (llama.cpp's
/// `timings`), kept in the record so its account can be compared with ours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTiming {
    /// Prompt tokens the server processed (not served from its cache).
    pub prompt_n: Option<u32>,
    /// Time the server spent on the prompt (ms).
    pub prompt_ms: Option<f64>,
    /// Tokens the server generated.
    pub predicted_n: Option<u32>,
    /// Time the server spent generating (ms).
    pub predicted_ms: Option<f64>,
    /// The server's time per generated token (ms).
    pub predicted_per_token_ms: Option<f64>,
}

impl ServerTiming {
    /// Reads llama.cpp's `timings` object.
    pub fn from_llamacpp(v: &serde_json::Value) -> Option<ServerTiming> {
        let o = v.as_object()?;
        let f = |k: &str| o.get(k).and_then(|x| x.as_f64());
        let n = |k: &str| o.get(k).and_then(|x| x.as_u64()).map(|x| x as u32);
        Some(ServerTiming {
            prompt_n: n("prompt_n"),
            prompt_ms: f("prompt_ms"),
            predicted_n: n("predicted_n"),
            predicted_ms: f("predicted_ms"),
            predicted_per_token_ms: f("predicted_per_token_ms"),
        })
    }
}

/// Where a request sits in a virtual-users run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserTag {
    /// The user (1-based).
    pub user: u32,
    /// The conversation: one run of the user's scenario, numbered across the run.
    pub conversation: u64,
    /// The request's turn within its conversation (1-based).
    pub turn: u32,
}

impl RequestRecord {
    /// Input sequences this request carried (vLLM's `num_input_sequences`, 1 for
    /// anything but a batch or a rerank).
    pub fn inputs(&self) -> u32 {
        self.input_sequences.max(1)
    }

    /// A request succeeded when it got a 200 and a complete, well-formed answer.
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// Time to first token in seconds, from the send start (vLLM's definition).
    pub fn ttft(&self) -> Option<f64> {
        self.chunks
            .first()
            .map(|t| crate::clock::secs(t.saturating_sub(self.sent_ns)))
    }

    /// End-to-end latency in seconds: send start to the last token-bearing chunk
    /// (vLLM's `latency`); for a request without chunks, to the end of the response.
    pub fn e2el(&self) -> f64 {
        let last = self.chunks.last().unwrap_or(self.end_ns);
        crate::clock::secs(last.saturating_sub(self.sent_ns))
    }

    /// Time per output token after the first, in seconds: (E2EL − TTFT)/(tokens − 1).
    /// `None` unless the response was streamed and has more than one output token.
    pub fn tpot(&self) -> Option<f64> {
        if !self.streamed || self.output_tokens <= 1 {
            return None;
        }
        let first = self.chunks.first()?;
        let last = self.chunks.last()?;
        Some(crate::clock::secs(last.saturating_sub(first)) / (self.output_tokens - 1) as f64)
    }

    /// Inter-token latencies in seconds. Each gap between consecutive chunks is spread
    /// evenly over the tokens of the later chunk (a chunk of k tokens after a gap g
    /// gives k values g/k), so batching several tokens into one SSE event does not
    /// inflate ITL. Extra tokens packed into the first chunk add no values (they have
    /// no gap of their own), so ITL is never understated by zero entries.
    pub fn itls(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.itl_count());
        out.extend(self.itl_iter());
        out
    }

    /// How many values [`RequestRecord::itls`] gives.
    pub fn itl_count(&self) -> usize {
        self.gaps().map(|(_, k)| k as usize).sum()
    }

    /// Each gap after the first chunk of a streamed answer: (nanoseconds since the
    /// previous chunk, tokens of this chunk, at least 1).
    fn gaps(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut it = self.chunks.iter();
        let mut prev = if self.streamed { it.next() } else { None }.map(|c| c.0);
        std::iter::from_fn(move || {
            let p = prev?;
            let (t, k) = it.next()?;
            prev = Some(t);
            Some((t.saturating_sub(p), k.max(1)))
        })
    }

    /// [`RequestRecord::itls`] without building the list: a run's summary walks
    /// every request's values this way, so it never holds 8 bytes per token.
    pub fn itl_iter(&self) -> ItlIter<impl Iterator<Item = (u64, u32)> + '_> {
        ItlIter {
            gaps: self.gaps(),
            value: 0.0,
            left: 0,
        }
    }

    /// Raw gaps between consecutive token-bearing chunks in seconds (vLLM's
    /// pre-fix per-chunk ITL), kept beside the per-token values.
    pub fn chunk_gaps(&self) -> Vec<f64> {
        self.chunk_gap_iter().collect()
    }

    /// [`RequestRecord::chunk_gaps`] without building the list.
    pub fn chunk_gap_iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.gaps().map(|(g, _)| crate::clock::secs(g))
    }

    /// Time to the first answer token (after reasoning), in seconds.
    pub fn ttfa(&self) -> Option<f64> {
        self.first_answer_ns
            .map(|t| crate::clock::secs(t.saturating_sub(self.sent_ns)))
    }

    /// Actual send start minus intended send time, in seconds.
    pub fn schedule_lag(&self) -> f64 {
        crate::clock::secs(self.sent_ns.saturating_sub(self.scheduled_ns))
    }

    /// TTFT measured from the intended send time (coordinated-omission corrected).
    pub fn intended_ttft(&self) -> Option<f64> {
        self.chunks
            .first()
            .map(|t| crate::clock::secs(t.saturating_sub(self.scheduled_ns)))
    }

    /// E2EL measured from the intended send time (coordinated-omission corrected).
    pub fn intended_e2el(&self) -> f64 {
        let last = self.chunks.last().unwrap_or(self.end_ns);
        crate::clock::secs(last.saturating_sub(self.scheduled_ns))
    }

    /// Drops what only the request's own path needed, once its live consumers
    /// (records file, `on_response`, a virtual user) have seen it: the answer text
    /// and its per-chunk offsets unless `keep_text`, and every list's spare
    /// capacity. A finished 128-token request then holds its chunk times and
    /// counts and little else (see `benches/memory.rs`).
    pub fn compact(&mut self, keep_text: bool) {
        if keep_text {
            self.text.shrink_to_fit();
            self.chunk_text_end.shrink_to_fit();
        } else {
            self.text = String::new();
            self.chunk_text_end = Vec::new();
        }
        self.request_id.shrink_to_fit();
    }

    /// The text carried by chunk `i` ("" once [`RequestRecord::compact`] dropped it).
    pub fn chunk_text(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.chunk_text_end[i - 1] as usize
        };
        let end = self.chunk_text_end[i] as usize;
        self.text.get(start..end).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sent: u64, chunks: &[(u64, u32)], out: u32) -> RequestRecord {
        RequestRecord {
            sent_ns: sent,
            scheduled_ns: sent,
            chunks: Chunks::from_lists(
                &chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
                &chunks.iter().map(|c| c.1).collect::<Vec<_>>(),
            ),
            chunk_text_end: (1..=chunks.len() as u32).collect(),
            output_tokens: out,
            streamed: true,
            end_ns: chunks.last().map(|c| c.0).unwrap_or(sent),
            ..Default::default()
        }
    }

    #[test]
    fn a_record_reads_back_as_written_with_every_field() {
        let r = RequestRecord {
            index: 7,
            warmup: true,
            request_id: "r7".into(),
            scheduled_ns: 1,
            dispatched_ns: 2,
            sent_ns: 3,
            chunks: Chunks::from_lists(&[10, 20, 35], &[1, 2, 1]),
            chunk_text_end: vec![1, 3, 4],
            end_ns: 40,
            streamed: true,
            prompt_tokens: 5,
            server_prompt_tokens: Some(6),
            input_sequences: 2,
            output_tokens: 4,
            server_output_tokens: Some(4),
            output_tokens_source: TokenSource::Usage,
            expected_output_tokens: Some(4),
            new_connection: true,
            status: 500,
            error: Some(RequestError::new(ErrorKind::Http, "boom")),
            text: "abcd".into(),
            first_answer_ns: Some(20),
            reasoning_tokens: 1,
            user: Some(UserTag {
                user: 1,
                conversation: 2,
                turn: 3,
            }),
            server_timing: Some(ServerTiming {
                prompt_n: Some(5),
                ..Default::default()
            }),
            audio_seconds: 1.5,
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["chunk_ns"], serde_json::json!([10, 20, 35]));
        assert_eq!(json["chunk_tokens"], serde_json::json!([1, 2, 1]));
        let back: RequestRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        // Files written before a field existed still read (its default).
        let mut old = json.as_object().unwrap().clone();
        for k in [
            "chunk_ns",
            "chunk_tokens",
            "input_sequences",
            "expected_output_tokens",
        ] {
            old.remove(k);
        }
        let back: RequestRecord = serde_json::from_value(old.into()).unwrap();
        assert_eq!(back.chunks.len(), 0);
    }

    #[test]
    fn multi_token_chunks_spread_the_gap() {
        const MS: u64 = 1_000_000;
        // first token at 100 ms; then a chunk of 1 token after 10 ms; then 4 tokens after 40 ms.
        let r = rec(0, &[(100 * MS, 1), (110 * MS, 1), (150 * MS, 4)], 6);
        assert!((r.ttft().unwrap() - 0.100).abs() < 1e-12);
        assert!((r.e2el() - 0.150).abs() < 1e-12);
        // TPOT = (150-100)/(6-1) = 10 ms
        assert!((r.tpot().unwrap() - 0.010).abs() < 1e-12);
        let itls = r.itls();
        assert_eq!(itls.len(), 5);
        for v in &itls {
            assert!((v - 0.010).abs() < 1e-12, "{v}");
        }
        assert_eq!(r.chunk_gaps().len(), 2);
        assert!((r.chunk_gaps()[1] - 0.040).abs() < 1e-12);
    }

    #[test]
    fn single_token_has_no_tpot() {
        let r = rec(0, &[(5, 1)], 1);
        assert_eq!(r.tpot(), None);
        assert!(r.itls().is_empty());
    }
}
