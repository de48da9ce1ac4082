//! Runs one request end to end and turns it into a [`RequestRecord`]. This is where
//! every token-bearing chunk gets its arrival time: the time of the socket read
//! that delivered it ([`super::http::ConnIo::last_read_ns`]), taken before its JSON
//! is parsed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::http::{Conn, HttpClient, hyper_error};
use super::sse::SseDecoder;
use super::{Target, protocol};
use crate::clock;
use crate::dataset::Request;
use crate::metrics::{ErrorKind, RequestError, RequestRecord, TokenSource};
use crate::tokenizer::Tokenizer;

/// What a response has delivered so far (kept when a request fails midway).
#[derive(Debug, Default)]
pub struct Accum {
    /// Arrival time of each token-bearing chunk.
    pub chunk_ns: Vec<u64>,
    /// Tokens per chunk from continuous usage stats (0 = unknown).
    pub chunk_tokens: Vec<u32>,
    /// End offset of each chunk's text in `text`.
    pub chunk_text_end: Vec<u32>,
    /// Generated text so far.
    pub text: String,
    /// `usage.prompt_tokens`, if reported.
    pub usage_prompt: Option<u32>,
    /// `usage.completion_tokens` (latest), if reported.
    pub usage_completion: Option<u32>,
    /// Whether usage came with every chunk (vLLM's `continuous_usage_stats`).
    pub continuous_usage: bool,
    /// Whether `[DONE]` arrived.
    pub done: bool,
    /// Chunks that carried reasoning text: (chunk index, bytes of reasoning text at
    /// the start of the chunk's text).
    pub reasoning_chunks: Vec<(usize, usize)>,
    /// Arrival of the first chunk with answer text (or a tool call).
    pub first_answer_ns: Option<u64>,
}

impl Accum {
    /// Adds a chunk: its answer and reasoning text. `delta` is its token count from
    /// usage reported with every chunk, if known. A chunk is token-bearing if it has
    /// text, a tool call, or a positive token delta; text in a chunk that carries no
    /// new tokens is attributed to the previous chunk.
    pub fn push_chunk(
        &mut self,
        t: u64,
        answer: &str,
        reasoning: &str,
        tool_call: bool,
        delta: Option<u32>,
    ) {
        let empty = answer.is_empty() && reasoning.is_empty() && !tool_call;
        if (!answer.is_empty() || tool_call) && self.first_answer_ns.is_none() {
            self.first_answer_ns = Some(t);
        }
        match delta {
            Some(0) if !self.chunk_ns.is_empty() => {
                self.text.push_str(reasoning);
                self.text.push_str(answer);
                *self.chunk_text_end.last_mut().unwrap() = self.text.len() as u32;
                return;
            }
            Some(0) | None if empty => return,
            _ => {}
        }
        if !reasoning.is_empty() {
            self.reasoning_chunks
                .push((self.chunk_ns.len(), reasoning.len()));
        }
        self.text.push_str(reasoning);
        self.text.push_str(answer);
        self.chunk_ns.push(t);
        self.chunk_tokens.push(delta.map_or(0, |d| d.max(1)));
        self.chunk_text_end.push(self.text.len() as u32);
    }

    /// A complete answer without output tokens (embeddings): one zero-token chunk.
    pub fn push_empty_answer(&mut self, t: u64) {
        self.continuous_usage = true;
        self.first_answer_ns = Some(t);
        self.chunk_ns.push(t);
        self.chunk_tokens.push(0);
        self.chunk_text_end.push(self.text.len() as u32);
    }

    /// Appends text a server sent cumulatively (the whole answer so far), as a chunk
    /// of the new part. `delta` as in [`Accum::push_chunk`].
    pub fn push_cumulative(
        &mut self,
        t: u64,
        full: &str,
        delta: Option<u32>,
    ) -> Result<(), crate::metrics::RequestError> {
        let new = full.strip_prefix(self.text.as_str()).ok_or_else(|| {
            super::protocol::protocol(
                "the cumulative text of a stream event does not continue the text so far",
            )
        })?;
        let new = new.to_string();
        self.push_chunk(t, &new, "", false, delta);
        Ok(())
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
    body: Vec<u8>,
) -> Result<hyper::Request<Full<Bytes>>, String> {
    let base = &target.base_url;
    let mut b = hyper::Request::post(target.request_path())
        .header("host", base.host_header())
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("moonbench/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(key) = &target.api_key {
        b = b.header("authorization", format!("Bearer {key}"));
    }
    for (k, v) in &target.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b = b.header("x-request-id", request_id);
    b.body(Full::new(Bytes::from(body)))
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
    let request_id = format!(
        "{}{}{}",
        target.request_id_prefix,
        if d.warmup { "warmup-" } else { "" },
        d.index
    );
    let mut rec = RequestRecord {
        index: d.index,
        warmup: d.warmup,
        scheduled_ns: d.scheduled_ns,
        dispatched_ns: d.dispatched_ns,
        prompt_tokens: req.prompt_tokens,
        streamed: target.stream,
        ..Default::default()
    };
    let http_req =
        protocol::build_body(target, req).and_then(|b| build_http_request(target, &request_id, b));
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
        let fut = transfer(
            ctx,
            http_req,
            &mut acc,
            &mut status,
            &mut new_conn,
            &mut streamed,
        );
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
    if result.is_ok() && acc.chunk_ns.is_empty() {
        result = Err(RequestError::new(
            ErrorKind::Protocol,
            "never received a token-bearing chunk (empty answer); the response is marked as failed",
        ));
    }
    finish_record(&mut rec, acc, ctx.tokenizer);
    rec.error = result.err();
    rec
}

fn fmt_dur(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Moves the accumulated response into the record and settles its token counts.
fn finish_record(rec: &mut RequestRecord, acc: Accum, tok: &Tokenizer) {
    rec.server_prompt_tokens = acc.usage_prompt;
    rec.server_output_tokens = acc.usage_completion;
    let (output, source) = match acc.usage_completion.filter(|&u| u > 0) {
        Some(u) => (u, TokenSource::Usage),
        None => (tok.count(&acc.text) as u32, TokenSource::Tokenizer),
    };
    rec.output_tokens = output;
    rec.output_tokens_source = source;
    rec.chunk_ns = acc.chunk_ns;
    rec.chunk_text_end = acc.chunk_text_end;
    rec.text = acc.text;
    rec.chunk_tokens = if acc.continuous_usage {
        acc.chunk_tokens
    } else {
        chunk_token_counts(rec, tok)
    };
    rec.first_answer_ns = acc.first_answer_ns;
    rec.reasoning_tokens = acc
        .reasoning_chunks
        .iter()
        .map(|&(i, bytes)| reasoning_in_chunk(rec, i, bytes, tok))
        .sum();
}

/// Reasoning tokens of chunk `i`, whose text starts with `bytes` of reasoning: all
/// of its tokens if it holds only reasoning, else the tokenizer's count of that part.
fn reasoning_in_chunk(rec: &RequestRecord, i: usize, bytes: usize, tok: &Tokenizer) -> u32 {
    let Some(&n) = rec.chunk_tokens.get(i) else {
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

/// Tokens per chunk when the server did not report them: one each when the total
/// equals the number of chunks; otherwise each chunk's text is counted with the
/// tokenizer and the counts are scaled to the total (largest remainder, at least 1).
fn chunk_token_counts(rec: &RequestRecord, tok: &Tokenizer) -> Vec<u32> {
    let n = rec.chunk_ns.len();
    let total = rec.output_tokens as usize;
    if total <= n || n == 0 {
        return vec![1; n];
    }
    let raw: Vec<f64> = (0..n)
        .map(|i| tok.count(rec.chunk_text(i)).max(1) as f64)
        .collect();
    fit_counts(&raw, total)
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

async fn send(
    conn: &mut Conn,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
    let fut = conn.sender.send_request(req);
    conn.io.drive(fut).await
}

/// Sends the request and reads the whole response into `acc`.
async fn transfer(
    ctx: &ExecContext<'_>,
    req: hyper::Request<Full<Bytes>>,
    acc: &mut Accum,
    status: &mut u16,
    new_conn: &mut bool,
    streamed: &mut bool,
) -> Result<(), RequestError> {
    let client = ctx.client;
    let api = ctx.target.backend.api;
    // A pooled connection the server closed while idle fails before the request is
    // sent; then the request goes out once more on a fresh connection.
    let retry_copy = {
        let (parts, body) = (req.uri().clone(), req.headers().clone());
        (parts, body, req.body().clone())
    };
    let (mut conn, resp) = match client.checkout() {
        Some(mut c) => match send(&mut c, req).await {
            Ok(r) => (c, r),
            Err(e) if e.is_canceled() || e.is_incomplete_message() || e.is_closed() => {
                *new_conn = true;
                let mut c = client.connect().await?;
                let mut again = hyper::Request::post(retry_copy.0)
                    .body(retry_copy.2)
                    .unwrap();
                *again.headers_mut() = retry_copy.1;
                let r = send(&mut c, again)
                    .await
                    .map_err(|e| hyper_error("sending the request failed", &e))?;
                (c, r)
            }
            Err(e) => return Err(hyper_error("sending the request failed", &e)),
        },
        None => {
            *new_conn = true;
            let mut c = client.connect().await?;
            let r = send(&mut c, req)
                .await
                .map_err(|e| hyper_error("sending the request failed", &e))?;
            (c, r)
        }
    };
    *status = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut body = resp.into_body();
    if *status != 200 {
        let mut buf = Vec::new();
        while let Some(frame) = conn.io.drive(body.frame()).await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data[..data.len().min(4096 - buf.len().min(4096))]);
            }
        }
        client.checkin(conn);
        let reason = hyper::StatusCode::from_u16(*status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let detail = serde_json::from_slice::<serde_json::Value>(&buf)
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
        }
        if *status == 404 {
            msg.push_str(&format!(
                " (is {} the right --endpoint for this server?)",
                ctx.target.request_path()
            ));
        }
        return Err(RequestError::new(ErrorKind::Http, msg));
    }
    if *streamed && !is_json {
        let mut sse = SseDecoder::new();
        let mut events = 0u32;
        loop {
            let frame = conn.io.drive(body.frame()).await;
            let t = conn.io.last_read_ns();
            match frame {
                None => break,
                Some(Err(e)) => {
                    let why = conn.io.error.clone().unwrap_or_else(|| e.to_string());
                    return Err(RequestError::new(
                        ErrorKind::Connection,
                        format!(
                            "the connection broke mid-stream after {} chunks: {why}",
                            acc.chunk_ns.len()
                        ),
                    ));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        sse.feed(&data, &mut |ev| {
                            events += 1;
                            protocol::on_event(api, ev.data, t, acc)
                        })?;
                    }
                }
            }
        }
        let t = conn.io.last_read_ns();
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
    } else {
        *streamed = false;
        let collected = conn
            .io
            .drive(body.collect())
            .await
            .map_err(|e| hyper_error("reading the response failed", &e))?;
        let t = conn.io.last_read_ns();
        protocol::on_body(api, &collected.to_bytes(), t, acc)?;
    }
    client.checkin(conn);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn push_chunk_rules() {
        let mut a = Accum::default();
        a.push_chunk(1, "", "", false, None); // role / finish chunk
        a.push_chunk(2, "", "hm", false, None); // reasoning first
        a.push_chunk(3, "x", "", false, None);
        a.push_chunk(4, "", "", true, None); // tool call delta
        assert_eq!(a.chunk_ns, vec![2, 3, 4]);
        assert_eq!(a.reasoning_chunks, vec![(0, 2)]);
        assert_eq!(a.first_answer_ns, Some(3));
        let mut b = Accum::default();
        b.push_chunk(1, "", "", false, Some(0));
        b.push_chunk(2, "ab", "", false, Some(2));
        b.push_chunk(3, "c", "", false, Some(0)); // held-back text, no new tokens
        assert_eq!(b.chunk_ns, vec![2]);
        assert_eq!(b.chunk_tokens, vec![2]);
        assert_eq!(b.text, "abc");
        assert_eq!(b.chunk_text_end, vec![3]);
        let mut c = Accum::default();
        c.push_cumulative(1, "ab", Some(1)).unwrap();
        c.push_cumulative(2, "abcd", Some(2)).unwrap();
        assert_eq!(
            (c.text.as_str(), c.chunk_tokens.clone()),
            ("abcd", vec![1, 2])
        );
        assert!(c.push_cumulative(3, "xyz", None).is_err());
    }
}
