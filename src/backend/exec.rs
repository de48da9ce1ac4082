//! Runs one request end to end and turns it into a [`RequestRecord`]. This is where
//! every token-bearing chunk gets its arrival time: the time of the socket read
//! that delivered it ([`super::h1::Conn::chunk`] returns it with the bytes), taken before its JSON
//! is parsed.

use std::time::Duration;

use bytes::Bytes;

use super::h1::{self, H1Error};
use super::http::{Conn, HttpClient, h1_error};
use super::sse::SseDecoder;
use super::{Target, protocol};
use crate::clock;
use crate::dataset::Request;
pub use crate::metrics::ServerTiming;
use crate::metrics::{Chunks, ErrorKind, RequestError, RequestRecord, TokenSource};
use crate::tokenizer::Tokenizer;

/// What a response has delivered so far (kept when a request fails midway).
///
/// Decoders push every event that carried text, a tool call or a token count as a
/// *raw chunk*; [`Accum::settle`] then applies the one rule for where each chunk's
/// token count comes from (see there).
#[derive(Debug, Default)]
pub struct Accum {
    /// Arrival time of each raw chunk.
    pub chunk_ns: Vec<u64>,
    /// The exact number of new tokens in each raw chunk, when the protocol tells it
    /// for that chunk (a cumulative-usage delta, a list of token ids, TGI's one token
    /// per event); `None` when it does not.
    pub chunk_count: Vec<Option<u32>>,
    /// Whether each raw chunk carried text or a tool call.
    pub chunk_content: Vec<bool>,
    /// Bytes of reasoning text at the start of each raw chunk's text.
    pub chunk_reasoning: Vec<u32>,
    /// End offset of each raw chunk's text in `text`.
    pub chunk_text_end: Vec<u32>,
    /// Generated text so far.
    pub text: String,
    /// `usage.prompt_tokens`, if reported.
    pub usage_prompt: Option<u32>,
    /// The server's total of output tokens (`usage.completion_tokens`, TGI's
    /// `generated_tokens`, llama.cpp's `tokens_predicted`), latest value.
    pub usage_completion: Option<u32>,
    /// The last cumulative token count seen on a chunk (for deltas).
    last_cumulative: Option<u32>,
    /// Whether the protocol's finish signal arrived (a choice's `finish_reason`,
    /// TGI's final `generated_text`, llama.cpp's `stop: true`, ...).
    pub done: bool,
    /// Whether an OpenAI stream's closing `data: [DONE]` arrived. Alone it does not
    /// finish an answer: llama-cpp-python sends it when it cuts a stream for the
    /// next request (`--interrupt_requests`), with no choice's `finish_reason`.
    pub done_marker: bool,
    /// Whether this protocol has no finish signal at all (Triton's generate_stream),
    /// so a stream's end cannot be told from a cut.
    pub no_finish_signal: bool,
    /// Arrival of the first chunk with answer text (or a tool call).
    pub first_answer_ns: Option<u64>,
    /// What the server said about its own timing of this request, if it did.
    pub server_timing: Option<ServerTiming>,
}

/// Where each chunk's token count came from, after [`Accum::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCounts {
    /// Every chunk's count came from the server (cumulative usage on every chunk,
    /// token ids, one token per event).
    Server,
    /// Counted from each chunk's text and fitted to the total.
    Text,
}

/// A settled response: token-bearing chunks with their token counts.
#[derive(Debug, Default)]
pub struct Settled {
    /// Arrival of each token-bearing chunk.
    pub chunk_ns: Vec<u64>,
    /// Tokens in each.
    pub chunk_tokens: Vec<u32>,
    /// End of each one's text in the answer text.
    pub chunk_text_end: Vec<u32>,
    /// Reasoning bytes at the start of each one's text.
    pub chunk_reasoning: Vec<u32>,
    /// Output tokens in all.
    pub output_tokens: u32,
    /// Whether `output_tokens` is the server's total.
    pub from_usage: bool,
}

impl Accum {
    /// Adds a raw chunk: its answer and reasoning text, whether it carried a tool
    /// call, and `count`, the exact number of new tokens in it when the protocol
    /// tells it for this chunk (see [`Accum::cumulative`]).
    pub fn push_chunk(
        &mut self,
        t: u64,
        answer: &str,
        reasoning: &str,
        tool_call: bool,
        count: Option<u32>,
    ) {
        let content = !answer.is_empty() || !reasoning.is_empty() || tool_call;
        if !content && count.unwrap_or(0) == 0 {
            return;
        }
        if (!answer.is_empty() || tool_call) && self.first_answer_ns.is_none() {
            self.first_answer_ns = Some(t);
        }
        self.text.push_str(reasoning);
        self.text.push_str(answer);
        self.chunk_ns.push(t);
        self.chunk_count.push(count);
        self.chunk_content.push(content);
        self.chunk_reasoning.push(reasoning.len() as u32);
        self.chunk_text_end.push(self.text.len() as u32);
    }

    /// Turns a cumulative token count reported on a chunk (vLLM's
    /// `continuous_usage_stats`, SGLang's `meta_info.completion_tokens`) into that
    /// chunk's new tokens, and keeps it as the server's total so far.
    pub fn cumulative(&mut self, total: u32) -> u32 {
        let d = total.saturating_sub(self.last_cumulative.unwrap_or(0));
        self.last_cumulative = Some(total);
        self.usage_completion = Some(total);
        d
    }

    /// Whether a cumulative token count has been seen on an earlier chunk.
    pub fn counts_cumulative(&self) -> bool {
        self.last_cumulative.is_some()
    }

    /// A complete answer without output tokens (embeddings).
    pub fn push_empty_answer(&mut self, t: u64) {
        self.first_answer_ns = Some(t);
        self.done = true;
        self.chunk_ns.push(t);
        self.chunk_count.push(Some(0));
        self.chunk_content.push(true);
        self.chunk_reasoning.push(0);
        self.chunk_text_end.push(self.text.len() as u32);
    }

    /// Appends text a server sent cumulatively (the whole answer so far), as a chunk
    /// of the new part. `count` as in [`Accum::push_chunk`].
    pub fn push_cumulative(
        &mut self,
        t: u64,
        full: &str,
        count: Option<u32>,
    ) -> Result<(), crate::metrics::RequestError> {
        let new = full.strip_prefix(self.text.as_str()).ok_or_else(|| {
            super::protocol::protocol(
                "the cumulative text of a stream event does not continue the text so far",
            )
        })?;
        let new = new.to_string();
        self.push_chunk(t, &new, "", false, count);
        Ok(())
    }

    /// Whether any token-bearing chunk has arrived.
    pub fn has_tokens(&self) -> bool {
        !self.chunk_ns.is_empty()
    }

    /// Which counting [`Accum::settle`] will use.
    pub fn counts(&self) -> ChunkCounts {
        if !self.chunk_count.is_empty() && self.chunk_count.iter().all(|c| c.is_some()) {
            ChunkCounts::Server
        } else {
            ChunkCounts::Text
        }
    }

    /// The one rule for where a chunk's token count comes from:
    ///
    /// - **Server counts** only when *every* raw chunk carried its own count
    ///   (cumulative usage on every chunk, token ids, one token per event). A chunk
    ///   with no new tokens then adds its text to the chunk before it (a detokenizer
    ///   that held text back); a chunk with tokens but no text (a partial UTF-8
    ///   character) still counts.
    /// - Otherwise chunks without text are not token-bearing, and each chunk's
    ///   tokens are counted from its text and fitted to the total.
    /// - A final usage (`usage.completion_tokens`, `tokens_predicted`,
    ///   `generated_tokens`) is the request's **total**. It checks the per-chunk
    ///   counts (when they disagree, the counts are refitted to it) and is never the
    ///   token count of the chunk that carried it — llama-server puts it in its last
    ///   choice chunk, with empty text.
    pub fn settle(&self, tok: &crate::tokenizer::Tokenizer) -> Settled {
        let mode = self.counts();
        let mut out = Settled::default();
        let mut start = 0u32;
        for i in 0..self.chunk_ns.len() {
            let end = self.chunk_text_end[i];
            let keep = match mode {
                ChunkCounts::Server => {
                    let c = self.chunk_count[i].unwrap_or(0);
                    if c == 0 && !out.chunk_ns.is_empty() {
                        // No new tokens: the text belongs to the previous chunk.
                        *out.chunk_text_end.last_mut().unwrap() = end;
                        start = end;
                        continue;
                    }
                    c > 0 || self.chunk_content[i]
                }
                ChunkCounts::Text => self.chunk_content[i],
            };
            if !keep {
                start = end;
                continue;
            }
            out.chunk_ns.push(self.chunk_ns[i]);
            out.chunk_text_end.push(end);
            out.chunk_reasoning.push(self.chunk_reasoning[i]);
            out.chunk_tokens.push(match mode {
                ChunkCounts::Server => self.chunk_count[i].unwrap_or(0),
                ChunkCounts::Text => tok.count(&self.text[start as usize..end as usize]) as u32,
            });
            start = end;
        }
        let counted: u32 = out.chunk_tokens.iter().sum();
        let total = self.usage_completion.filter(|&u| u > 0 || counted == 0);
        out.from_usage = total.is_some();
        out.output_tokens = total.unwrap_or(match mode {
            ChunkCounts::Server => counted,
            ChunkCounts::Text => tok.count(&self.text) as u32,
        });
        let n = out.chunk_ns.len();
        let total = out.output_tokens as usize;
        let fits = counted as usize == total && out.chunk_tokens.iter().all(|&c| c > 0);
        if n > 0 && !(mode == ChunkCounts::Server && fits) && total > 0 {
            out.chunk_tokens = if total <= n {
                vec![1; n]
            } else {
                let w: Vec<f64> = out.chunk_tokens.iter().map(|&c| c.max(1) as f64).collect();
                fit_counts(&w, total)
            };
        }
        out
    }
}

/// Identity and timing of one dispatched request.
#[derive(Debug, Clone, Copy)]
pub struct Dispatch {
    /// Index in the schedule.
    pub index: u64,
    /// Intended send time.
    pub scheduled_ns: u64,
    /// When the dispatcher released it.
    pub dispatched_ns: u64,
    /// Whether it is a warm-up request.
    pub warmup: bool,
}

/// Everything a request needs besides itself.
pub struct ExecContext<'a> {
    /// Connections to the server.
    pub client: &'a HttpClient,
    /// Where and how to send.
    pub target: &'a Target,
    /// Counts tokens the server did not report.
    pub tokenizer: &'a Tokenizer,
}

fn build_http_request(
    target: &Target,
    request_id: &str,
    body: Bytes,
) -> Result<h1::Request, String> {
    let base = &target.base_url;
    let mut b = h1::Request::new(http::Method::POST, target.request_path(), body)
        .header("host", &base.host_header())?
        .header(
            "content-type",
            protocol::content_type(target.backend.api).as_ref(),
        )?
        .header(
            "user-agent",
            concat!("moonbench/", env!("CARGO_PKG_VERSION")),
        )?;
    if let Some(key) = &target.api_key {
        b = b.header("authorization", &format!("Bearer {key}"))?;
    }
    for (k, v) in &target.headers {
        b = b.header(k, v)?;
    }
    b.header("x-request-id", request_id)
        .map_err(|e| format!("cannot build the HTTP request: {e}"))
}

/// Sends `req` and measures it. Never fails: every outcome is a record.
/// `abort` resolves when the request must be cut off (hard interruption).
pub async fn execute(
    ctx: &ExecContext<'_>,
    req: &Request,
    d: Dispatch,
    abort: impl std::future::Future<Output = ()>,
) -> RequestRecord {
    let target = ctx.target;
    let request_id = if target.request_id_prefix.is_empty() {
        uuid_v4()
    } else {
        format!(
            "{}{}{}",
            target.request_id_prefix,
            if d.warmup { "warmup-" } else { "" },
            d.index
        )
    };
    let mut rec = RequestRecord {
        index: d.index,
        warmup: d.warmup,
        scheduled_ns: d.scheduled_ns,
        dispatched_ns: d.dispatched_ns,
        prompt_tokens: req.prompt_tokens,
        input_sequences: target.backend.api.input_sequences(&req.prompt),
        audio_seconds: match &req.prompt {
            crate::dataset::Prompt::Audio(a) => a.seconds,
            _ => 0.0,
        },
        streamed: target.stream,
        expected_output_tokens: req.max_tokens.filter(|_| {
            !target.backend.api.pooling()
                && protocol::merged_fields(target, req).get("ignore_eos")
                    == Some(&serde_json::Value::Bool(true))
        }),
        ..Default::default()
    };
    // The body lives in the request only, which is dropped once a 200 head came
    // (it is kept for the message of any other status).
    let http_req = protocol::build_body(target, req, d.index)
        .and_then(|b| build_http_request(target, &request_id, Bytes::from(b)));
    rec.request_id = request_id;
    let http_req = match http_req {
        Ok(r) => r,
        Err(e) => {
            rec.sent_ns = clock::now_ns();
            rec.end_ns = rec.sent_ns;
            rec.error = Some(RequestError::new(ErrorKind::Protocol, e));
            return rec;
        }
    };
    let mut acc = Accum::default();
    let mut status = 0u16;
    let mut new_conn = false;
    let mut streamed = target.stream;
    rec.sent_ns = clock::now_ns();
    let result = {
        // Boxed: awaited inside the timeout and the select below, an unboxed
        // future would be laid out in this one's state more than once (a request
        // task was 23.5 KB; boxed here and in the engine, 0.2 + 1.6 + 5.1 KB).
        let fut = Box::pin(transfer(
            ctx,
            http_req,
            &mut acc,
            &mut status,
            &mut new_conn,
            &mut streamed,
        ));
        let timed = async {
            match target.timeout {
                Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| {
                    Err(RequestError::new(
                        ErrorKind::Timeout,
                        format!("no complete response within {}", fmt_dur(t)),
                    ))
                }),
                None => fut.await,
            }
        };
        tokio::select! {
            r = timed => r,
            _ = abort => Err(RequestError::new(ErrorKind::Cancelled, "cut off by an interruption (Ctrl-C/SIGTERM)")),
        }
    };
    rec.end_ns = clock::now_ns();
    rec.status = status;
    rec.new_connection = new_conn;
    rec.streamed = streamed;
    let mut result = result;
    if result.is_ok() && streamed && !acc.done && !acc.no_finish_signal {
        let how = if acc.done_marker {
            "came to data: [DONE] with no choice's finish_reason"
        } else {
            "ended"
        };
        result = Err(RequestError::new(
            ErrorKind::Incomplete,
            format!(
                "the stream {how} after {} chunks, without the protocol's finish signal ({}); \
                 the server cut the answer short (kept what arrived)",
                acc.chunk_ns.len(),
                target.backend.api.finish_signal()
            ),
        ));
    }
    if result.is_ok() && !acc.has_tokens() {
        result = Err(RequestError::new(
            ErrorKind::Protocol,
            "never received a token-bearing chunk (empty answer); the response is marked as failed",
        ));
    }
    finish_record(&mut rec, acc, ctx.tokenizer);
    rec.error = result.err();
    rec
}

/// A random (version 4) UUID, as vLLM's and most servers' own request ids.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fmt_dur(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Moves the accumulated response into the record and settles its token counts
/// ([`Accum::settle`]).
fn finish_record(rec: &mut RequestRecord, acc: Accum, tok: &Tokenizer) {
    let s = acc.settle(tok);
    rec.server_prompt_tokens = acc.usage_prompt;
    rec.server_output_tokens = acc.usage_completion;
    rec.output_tokens = s.output_tokens;
    rec.output_tokens_source = if s.from_usage {
        TokenSource::Usage
    } else {
        TokenSource::Tokenizer
    };
    rec.chunks = Chunks::from_lists(&s.chunk_ns, &s.chunk_tokens);
    rec.chunk_text_end = s.chunk_text_end;
    rec.text = acc.text;
    rec.first_answer_ns = acc.first_answer_ns;
    rec.server_timing = acc.server_timing;
    rec.reasoning_tokens = s
        .chunk_reasoning
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b > 0)
        .map(|(i, &b)| reasoning_in_chunk(rec, &s.chunk_tokens, i, b as usize, tok))
        .sum();
}

/// Reasoning tokens of chunk `i`, whose text starts with `bytes` of reasoning: all
/// of its tokens if it holds only reasoning, else the tokenizer's count of that part.
fn reasoning_in_chunk(
    rec: &RequestRecord,
    chunk_tokens: &[u32],
    i: usize,
    bytes: usize,
    tok: &Tokenizer,
) -> u32 {
    let Some(&n) = chunk_tokens.get(i) else {
        return 0;
    };
    let start = if i == 0 {
        0
    } else {
        rec.chunk_text_end[i - 1] as usize
    };
    let end = rec.chunk_text_end[i] as usize;
    if start + bytes >= end {
        return n;
    }
    rec.text
        .get(start..start + bytes)
        .map_or(0, |r| (tok.count(r) as u32).clamp(1, n.max(1)).min(n))
}

/// Scales positive weights to integers ≥ 1 summing to `total` (largest remainder).
pub fn fit_counts(weights: &[f64], total: usize) -> Vec<u32> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let extra = total.saturating_sub(n) as f64;
    let wsum: f64 = weights.iter().map(|w| w - 1.0).sum();
    let shares: Vec<f64> = if wsum > 0.0 {
        weights.iter().map(|w| (w - 1.0) / wsum * extra).collect()
    } else {
        vec![extra / n as f64; n]
    };
    let mut out: Vec<u32> = shares.iter().map(|s| 1 + s.floor() as u32).collect();
    let mut left = total as i64 - out.iter().map(|&c| c as i64).sum::<i64>();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor()))
    });
    for &i in order.iter().cycle() {
        if left <= 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Sends the request and reads the whole response into `acc`: a connection and
/// the response head ([`send_on_pool`]), then an error body, an event stream or a
/// whole body.
async fn transfer(
    ctx: &ExecContext<'_>,
    req: h1::Request,
    acc: &mut Accum,
    status: &mut u16,
    new_conn: &mut bool,
    streamed: &mut bool,
) -> Result<(), RequestError> {
    let client = ctx.client;
    let api = ctx.target.backend.api;
    let (mut conn, head) = send_on_pool(client, &req, new_conn).await?;
    *status = head.status;
    let is_json = head
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if *status != 200 {
        // What could be read of the error body (the connection is reused only if
        // all of it was).
        let buf = conn.read_to_end(4096).await.unwrap_or_default();
        client.checkin(conn);
        return Err(http_error(ctx, *status, &buf, &req.headers, &req.body));
    }
    drop(req);
    if *streamed && !is_json {
        read_stream(&mut conn, api, acc).await?;
    } else {
        *streamed = false;
        let body = conn
            .read_to_end(usize::MAX)
            .await
            .map_err(|e| h1_error("reading the response failed", &e))?;
        let t = conn.last_read_ns();
        protocol::on_body(api, &body, t, acc)?;
    }
    client.checkin(conn);
    Ok(())
}

/// Sends `req` on a pooled connection, or a new one when the pool has none. A
/// pooled connection the server closed while idle (closed before any byte of
/// the answer came) gets the request once more on a fresh connection.
async fn send_on_pool(
    client: &HttpClient,
    req: &h1::Request,
    new_conn: &mut bool,
) -> Result<(Conn, h1::Head), RequestError> {
    let sending = |e: H1Error| h1_error("sending the request failed", &e);
    let Some(mut c) = client.checkout() else {
        *new_conn = true;
        let mut c = client.connect().await?;
        let r = c.send(req).await.map_err(sending)?;
        return Ok((c, r));
    };
    match c.send(req).await {
        Ok(r) => Ok((c, r)),
        Err(H1Error::ClosedBeforeResponse(_)) => {
            *new_conn = true;
            let mut c = client.connect().await?;
            let r = c.send(req).await.map_err(sending)?;
            Ok((c, r))
        }
        Err(e) => Err(sending(e)),
    }
}

/// The error of a non-200 answer: status, reason and the server's message (or
/// what was sent, for an empty 4xx; the endpoint in question, for a 404).
fn http_error(
    ctx: &ExecContext<'_>,
    status: u16,
    buf: &[u8],
    sent_headers: &http::HeaderMap,
    sent_body: &[u8],
) -> RequestError {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let detail = serde_json::from_slice::<serde_json::Value>(buf)
        .ok()
        .and_then(|v| {
            v.get("error")
                .map(protocol::error_message)
                .or_else(|| v.get("message").map(|m| m.to_string()))
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&buf[..buf.len().min(300)])
                .trim()
                .to_string()
        });
    let mut msg = format!("HTTP {status} {reason}");
    if !detail.is_empty() {
        msg.push_str(": ");
        msg.push_str(&detail);
    } else if (400..500).contains(&status) {
        msg.push_str(&format!(
            " with an empty body; {}",
            protocol::what_was_sent(ctx.target, sent_headers, sent_body)
        ));
    }
    if status == 404 {
        msg.push_str(&format!(
            " (is {} the right --endpoint for this server?)",
            ctx.target.request_path()
        ));
    }
    RequestError::new(ErrorKind::Http, msg)
}

/// Reads an event stream: each event goes to the API's `on_event` with the time
/// its bytes were read from the socket.
async fn read_stream(
    conn: &mut Conn,
    api: super::Api,
    acc: &mut Accum,
) -> Result<(), RequestError> {
    let mut sse = SseDecoder::new();
    let mut events = 0u32;
    loop {
        match conn.chunk().await {
            Ok(None) => break,
            Err(e) => {
                let what = format!(
                    "the connection broke mid-stream after {} chunks",
                    acc.chunk_ns.len()
                );
                return Err(h1_error(&what, &e));
            }
            Ok(Some((t, data))) => {
                sse.feed(data, &mut |ev| {
                    events += 1;
                    protocol::on_event(api, ev.data, t, acc)
                })?;
            }
        }
    }
    let t = conn.last_read_ns();
    sse.finish(&mut |ev| {
        events += 1;
        protocol::on_event(api, ev.data, t, acc)
    })?;
    if events == 0 && sse.junk_lines > 0 {
        return Err(RequestError::new(
            ErrorKind::Protocol,
            format!(
                "expected a server-sent event stream (data: ... lines), got: {}",
                sse.first_junk.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers the first request on each connection, then closes it
    /// when a second one comes (its keep-alive ran out while the connection sat in
    /// our pool): the second request goes out again on a new connection and
    /// succeeds, counted as a new connection; a server that never answers is a
    /// connection error, not a retry loop.
    #[tokio::test]
    async fn a_pooled_connection_the_server_dropped_is_retried_once_on_a_new_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acc2 = accepted.clone();
        let srv = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                acc2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut seen = 0;
                    let mut req = Vec::new();
                    let mut b = [0u8; 4096];
                    loop {
                        let n = s.read(&mut b).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        req.extend_from_slice(&b[..n]);
                        // Head and the (small) JSON body have come once it ends in '}'.
                        if !(req.windows(4).any(|w| w == b"\r\n\r\n") && req.ends_with(b"}")) {
                            continue;
                        }
                        req.clear();
                        seen += 1;
                        if seen > 1 {
                            return; // closes without answering
                        }
                        let body = "data: {\"choices\":[{\"text\":\" hi\",\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        s.write_all(head.as_bytes()).await.unwrap();
                        s.write_all(body.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        let mut target = crate::backend::test_target("openai", "m");
        target.base_url = crate::backend::BaseUrl::parse(&format!("http://{addr}")).unwrap();
        target.timeout = Some(Duration::from_secs(10));
        let client = HttpClient::new(&target.base_url).await.unwrap();
        let tok = Tokenizer::words();
        let ctx = ExecContext {
            client: &client,
            target: &target,
            tokenizer: &tok,
        };
        let req = Request::text("p", 1, Some(1));
        let d = |i| Dispatch {
            index: i,
            scheduled_ns: 0,
            dispatched_ns: 0,
            warmup: false,
        };
        let first = execute(&ctx, &req, d(0), std::future::pending()).await;
        assert!(first.success(), "{:?}", first.error);
        assert_eq!(client.idle_count(), 1, "the answered connection is pooled");
        let second = execute(&ctx, &req, d(1), std::future::pending()).await;
        assert!(second.success(), "{:?}", second.error);
        assert!(second.new_connection);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 2);
        srv.abort();
    }

    #[test]
    fn fit_counts_sums_to_total() {
        assert_eq!(fit_counts(&[1.0, 1.0, 1.0], 3), vec![1, 1, 1]);
        assert_eq!(fit_counts(&[1.0, 3.0], 4), vec![1, 3]);
        let v = fit_counts(&[2.0, 2.0, 5.0], 10);
        assert_eq!(v.iter().sum::<u32>(), 10);
        assert!(v.iter().all(|&c| c >= 1));
        assert_eq!(fit_counts(&[1.0, 1.0], 5).iter().sum::<u32>(), 5);
    }

    #[test]
    fn push_chunk_and_settle_rules() {
        let tok = Tokenizer::words();
        let mut a = Accum::default();
        a.push_chunk(1, "", "", false, None); // role / finish chunk: not a chunk at all
        a.push_chunk(2, "", "hm", false, None); // reasoning first
        a.push_chunk(3, " x", "", false, None);
        a.push_chunk(4, "", "", true, None); // tool call delta
        assert_eq!(a.chunk_ns, vec![2, 3, 4]);
        assert_eq!(a.first_answer_ns, Some(3));
        let s = a.settle(&tok);
        assert_eq!(s.chunk_reasoning, vec![2, 0, 0]);
        // Cumulative usage on every chunk: the deltas are the counts; a chunk with no
        // new tokens gives its text to the chunk before it.
        let mut b = Accum::default();
        let c0 = b.cumulative(0);
        b.push_chunk(1, "", "", false, Some(c0));
        let c1 = b.cumulative(2);
        b.push_chunk(2, "ab", "", false, Some(c1));
        let c2 = b.cumulative(2);
        b.push_chunk(3, "c", "", false, Some(c2)); // held-back text, no new tokens
        let s = b.settle(&tok);
        assert_eq!(s.chunk_ns, vec![2]);
        assert_eq!(s.chunk_tokens, vec![2]);
        assert_eq!(s.chunk_text_end, vec![3]);
        assert_eq!((s.output_tokens, s.from_usage), (2, true));
        let mut c = Accum::default();
        c.push_cumulative(1, "ab", Some(1)).unwrap();
        c.push_cumulative(2, "abcd", Some(2)).unwrap();
        assert_eq!(c.text, "abcd");
        assert_eq!(c.settle(&tok).chunk_tokens, vec![1, 2]);
        assert!(c.push_cumulative(3, "xyz", None).is_err());
    }

    /// llama-server puts `usage` into its last choice chunk (empty text, finish
    /// reason set): that is the request's total, not 32 tokens arriving at once.
    #[test]
    fn a_final_usage_is_a_total_not_a_chunk() {
        let tok = Tokenizer::words();
        let mut a = Accum::default();
        for i in 0..32u64 {
            a.push_chunk(10 + i, " w", "", false, None);
        }
        let n = a.cumulative(32);
        a.push_chunk(99, "", "", false, Some(n));
        let s = a.settle(&tok);
        assert_eq!(s.chunk_ns.len(), 32, "the usage chunk is not token-bearing");
        assert_eq!(s.chunk_tokens, vec![1; 32]);
        assert_eq!((s.output_tokens, s.from_usage), (32, true));
        // The total checks the per-chunk counts: 3 chunks, 6 tokens by the server.
        let mut b = Accum::default();
        for (t, text) in [(1, " a"), (2, " b c"), (3, " d e f")] {
            b.push_chunk(t, text, "", false, None);
        }
        b.usage_completion = Some(6);
        assert_eq!(b.settle(&tok).chunk_tokens, vec![1, 2, 3]);
        // Server counts that disagree with the total are refitted to it.
        let mut c = Accum::default();
        c.push_chunk(1, " a", "", false, Some(1));
        c.push_chunk(2, " b", "", false, Some(1));
        c.usage_completion = Some(4);
        let s = c.settle(&tok);
        assert_eq!(s.chunk_tokens.iter().sum::<u32>(), 4);
    }
}
