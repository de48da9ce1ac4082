//! The simulator's streaming body: where it decides when to send the next token.
//! Each chunk is sent when the timing model says its last token is ready; the send
//! time is recorded (the ground truth) at the moment the chunk is handed to hyper,
//! which writes it within the same poll.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Sleep;

use super::SimState;
use super::faults::Fault;
use super::timing::token_ready_ns;
use super::truth::Truth;
use crate::clock;

/// Error type of simulator bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The text of token `k` of request `seq`: a common word with a leading space, a
/// single token for the word-count fallback and for usual BPE vocabularies.
pub fn token_text(seq: u64, k: u32) -> &'static str {
    const SPACED: [&str; 8] = [
        " the", " moon", " bench", " token", " light", " river", " stone", " model",
    ];
    SPACED[((seq.wrapping_mul(31)).wrapping_add(k as u64 * 7) % SPACED.len() as u64) as usize]
}

/// The texts of tokens `first..first+r` and `first+r..first+n` of request `seq`.
pub fn split_tokens(seq: u64, first: u32, r: u32, n: u32) -> (String, String) {
    let mut a = String::new();
    let mut b = String::new();
    for k in first..first + n {
        let out = if k < first + r { &mut a } else { &mut b };
        out.push_str(token_text(seq, k));
    }
    (a, b)
}

/// Which server's chunk format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/v1/completions` chunks.
    Completions,
    /// `/v1/chat/completions` chunks.
    Chat,
    /// SGLang `/generate`: whole text so far + `meta_info`.
    Sglang,
    /// TGI `/generate_stream`: one event per token.
    Tgi,
    /// TensorRT-LLM `generate_stream`: `text_output`.
    TrtLlm,
    /// llama.cpp `/completion`: `content`, then `stop: true` with counts.
    LlamaCpp,
    /// OpenAI Responses: `event:` + `data:` typed events, `response.completed` last.
    Responses,
    /// vLLM's transcription stream: chat-like `transcription.chunk` events.
    Transcription,
}

enum Phase {
    Tokens,
    Tail,
    Stalled,
    Done,
}

/// A streamed answer in progress.
pub struct SimStream {
    /// Shared server state.
    pub st: Arc<SimState>,
    /// Request sequence number.
    pub seq: u64,
    /// Tokens to generate.
    pub n: u32,
    /// `max_tokens` asked for (decides the finish reason).
    pub max_tokens: u32,
    /// Prompt tokens (for usage).
    pub prompt_tokens: u32,
    /// Chunk format.
    pub format: Format,
    /// `"data: {...,"choices":[{"index":0,` prefix of every token chunk.
    pub prefix: String,
    /// Same prefix for usage-only chunks (ends after `"model":"m",`).
    pub head: String,
    /// Send a usage chunk at the end.
    pub include_usage: bool,
    /// Put usage in every chunk (vLLM's continuous_usage_stats).
    pub continuous_usage: bool,
    /// Fault to inject, and after how many chunks.
    pub fault: Option<(Fault, u32)>,
    /// Request id for the truth log.
    pub request_id: String,
    /// Admission slot held while generating.
    pub permit: Option<OwnedSemaphorePermit>,
    /// With the step engine: one message per token generated (its step's end);
    /// the stream sends a chunk once its tokens have arrived, instead of sleeping.
    pub tokens: Option<UnboundedReceiver<u64>>,
    /// Tokens the engine has generated so far.
    ready: u32,
    /// When the step of the latest of them ended.
    ready_ns: u64,
    start_ns: u64,
    sent: u32,
    chunks: u32,
    text: String,
    next_ns: u64,
    sleep: Pin<Box<Sleep>>,
    /// A reset fault has waited for the client to read what came before it.
    reset_armed: bool,
    phase: Phase,
    truth: Truth,
}

impl SimStream {
    /// A stream whose first chunk is due `first_ns` (clock ns).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        st: Arc<SimState>,
        seq: u64,
        n: u32,
        max_tokens: u32,
        prompt_tokens: u32,
        format: Format,
        prefix: String,
        head: String,
        received_ns: u64,
        start_ns: u64,
    ) -> SimStream {
        // The first chunk goes out when its last token is ready.
        let k = st.tokens_per_chunk.min(n.max(1));
        let first = token_ready_ns(st.timing.as_ref(), seq, prompt_tokens, start_ns, k - 1);
        SimStream {
            st,
            seq,
            n,
            max_tokens,
            prompt_tokens,
            format,
            prefix,
            head,
            include_usage: false,
            continuous_usage: false,
            fault: None,
            request_id: String::new(),
            permit: None,
            tokens: None,
            ready: 0,
            ready_ns: 0,
            start_ns,
            sent: 0,
            chunks: 0,
            text: String::new(),
            next_ns: first,
            sleep: Box::pin(tokio::time::sleep_until(clock::instant_of(first).into())),
            reset_armed: false,
            phase: Phase::Tokens,
            truth: Truth {
                received_ns,
                ..Default::default()
            },
        }
    }

    /// Times the stream as if only `prefill` prompt tokens needed computing (the rest
    /// were in the prefix cache). Call before the stream is first polled.
    pub fn set_prefill_tokens(&mut self, prefill: u32) {
        let k = self.st.tokens_per_chunk.min(self.n.max(1));
        let start_ns = self.start_ns;
        self.next_ns = token_ready_ns(self.st.timing.as_ref(), self.seq, prefill, start_ns, k - 1);
        self.sleep = Box::pin(tokio::time::sleep_until(
            clock::instant_of(self.next_ns).into(),
        ));
    }

    fn usage_json(&self, completion: u32) -> String {
        format!(
            "{{\"prompt_tokens\":{},\"total_tokens\":{},\"completion_tokens\":{}}}",
            self.prompt_tokens,
            self.prompt_tokens + completion,
            completion
        )
    }

    fn finish_reason(&self) -> &'static str {
        if self.sent >= self.max_tokens {
            "length"
        } else {
            "stop"
        }
    }

    fn token_chunk(&mut self, tokens: u32) -> Vec<u8> {
        let mut text = String::new();
        for i in 0..tokens {
            text.push_str(token_text(self.seq, self.sent + i));
        }
        let first_index = self.sent;
        self.sent += tokens;
        self.text.push_str(&text);
        let last = self.sent >= self.n;
        let finish = if !last {
            "null".to_string()
        } else {
            format!("\"{}\"", self.finish_reason())
        };
        let usage = if self.continuous_usage {
            format!(",\"usage\":{}", self.usage_json(self.sent))
        } else {
            String::new()
        };
        let mut out = String::with_capacity(self.prefix.len() + text.len() + 128);
        match self.format {
            Format::Completions => {
                out.push_str(&self.prefix);
                out.push_str(&format!("\"text\":\"{text}\",\"logprobs\":null,\"finish_reason\":{finish},\"stop_reason\":null}}]{usage}}}\n\n"));
            }
            Format::Chat => {
                if self.chunks == 0 {
                    let role_usage = if self.continuous_usage {
                        format!(",\"usage\":{}", self.usage_json(0))
                    } else {
                        String::new()
                    };
                    out.push_str(&self.prefix);
                    out.push_str(&format!("\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]{role_usage}}}\n\n"));
                }
                // Tokens before `reasoning_tokens` are reasoning, the rest the answer.
                let r = self.st.reasoning_tokens.clamp(first_index, self.sent) - first_index;
                let (think, answer) = split_tokens(self.seq, first_index, r, tokens);
                let delta = match (think.is_empty(), answer.is_empty()) {
                    (true, _) => format!("\"content\":\"{answer}\""),
                    (false, true) => format!("\"reasoning_content\":\"{think}\""),
                    (false, false) => {
                        format!("\"reasoning_content\":\"{think}\",\"content\":\"{answer}\"")
                    }
                };
                out.push_str(&self.prefix);
                out.push_str(&format!("\"delta\":{{{delta}}},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage}}}\n\n"));
            }
            Format::Transcription => {
                // vLLM opens with an empty delta (and usage, with continuous stats).
                if self.chunks == 0 {
                    let first_usage = if self.continuous_usage {
                        format!(",\"usage\":{}", self.usage_json(0))
                    } else {
                        String::new()
                    };
                    out.push_str(&self.prefix);
                    out.push_str(&format!("\"delta\":{{\"content\":\"\"}},\"finish_reason\":null}}]{first_usage}}}\n\n"));
                }
                out.push_str(&self.prefix);
                out.push_str(&format!("\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":{finish}}}]{usage}}}\n\n"));
            }
            Format::Sglang => {
                let fr = if last {
                    format!(
                        "{{\"type\":\"{}\",\"length\":{}}}",
                        self.finish_reason(),
                        self.sent
                    )
                } else {
                    "null".into()
                };
                out.push_str(&format!(
                    "data: {{\"text\":\"{}\",\"meta_info\":{{\"id\":\"{}\",\"finish_reason\":{fr},\"prompt_tokens\":{},\"completion_tokens\":{},\"cached_tokens\":0}},\"index\":0}}\n\n",
                    self.text, self.seq, self.prompt_tokens, self.sent
                ));
            }
            Format::Tgi => {
                for k in 0..tokens {
                    let tok = token_text(self.seq, first_index + k);
                    let is_last = last && k + 1 == tokens;
                    let (gen_text, details) = if is_last {
                        (
                            format!("\"{}\"", self.text),
                            format!(
                                "{{\"finish_reason\":\"{}\",\"generated_tokens\":{},\"seed\":null,\"input_length\":{}}}",
                                if self.finish_reason() == "length" {
                                    "length"
                                } else {
                                    "eos_token"
                                },
                                self.sent,
                                self.prompt_tokens
                            ),
                        )
                    } else {
                        ("null".into(), "null".into())
                    };
                    out.push_str(&format!(
                        "data:{{\"index\":{},\"token\":{{\"id\":{},\"text\":\"{tok}\",\"logprob\":-0.25,\"special\":false}},\"generated_text\":{gen_text},\"details\":{details},\"top_tokens\":null}}\n\n",
                        first_index + k + 1, 1000 + (first_index + k)
                    ));
                }
            }
            Format::TrtLlm => {
                out.push_str(&format!(
                    "data: {{\"model_name\":\"ensemble\",\"model_version\":\"1\",\"sequence_end\":false,\"sequence_id\":0,\"sequence_start\":false,\"text_output\":\"{text}\"}}\n\n"
                ));
            }
            Format::Responses => {
                if self.chunks == 0 {
                    out.push_str(&format!(
                        "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"id\":\"resp_{}\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":{},\"output\":[],\"usage\":null}}}}\n\n",
                        self.seq,
                        serde_json::to_string(&self.st.model).unwrap()
                    ));
                }
                let r = self.st.reasoning_tokens.clamp(first_index, self.sent) - first_index;
                let (think, answer) = split_tokens(self.seq, first_index, r, tokens);
                for (kind, delta) in [("reasoning_text", think), ("output_text", answer)] {
                    if !delta.is_empty() {
                        out.push_str(&format!(
                            "event: response.{kind}.delta\ndata: {{\"type\":\"response.{kind}.delta\",\"sequence_number\":{},\"item_id\":\"msg_{}\",\"output_index\":0,\"content_index\":0,\"delta\":\"{delta}\"}}\n\n",
                            first_index + 1,
                            self.seq
                        ));
                    }
                }
            }
            Format::LlamaCpp => {
                let ids: Vec<String> = (first_index..self.sent)
                    .map(|i| (1000 + i).to_string())
                    .collect();
                out.push_str(&format!(
                    "data: {{\"index\":0,\"content\":\"{text}\",\"tokens\":[{}],\"stop\":false,\"id_slot\":0}}\n\n",
                    ids.join(",")
                ));
            }
        }
        out.into_bytes()
    }

    fn tail(&self) -> Vec<u8> {
        let mut out = String::new();
        match self.format {
            Format::Completions | Format::Chat | Format::Transcription => {
                if self.include_usage {
                    out.push_str(&self.head);
                    out.push_str("\"choices\":[],\"usage\":");
                    out.push_str(&self.usage_json(self.sent));
                    out.push_str("}\n\n");
                }
                out.push_str("data: [DONE]\n\n");
            }
            Format::Sglang => out.push_str("data: [DONE]\n\n"),
            Format::Tgi | Format::TrtLlm => {}
            Format::Responses => {
                let (event, status) = if self.finish_reason() == "length" {
                    ("response.incomplete", "incomplete")
                } else {
                    ("response.completed", "completed")
                };
                out.push_str(&format!(
                    "event: {event}\ndata: {{\"type\":\"{event}\",\"sequence_number\":{},\"response\":{{\"id\":\"resp_{}\",\"object\":\"response\",\"status\":\"{status}\",\"model\":{},\"usage\":{{\"input_tokens\":{},\"output_tokens\":{},\"total_tokens\":{}}}}}}}\n\n",
                    self.sent + 1,
                    self.seq,
                    serde_json::to_string(&self.st.model).unwrap(),
                    self.prompt_tokens,
                    self.sent,
                    self.prompt_tokens + self.sent
                ));
            }
            Format::LlamaCpp => out.push_str(&format!(
                "data: {{\"index\":0,\"content\":\"\",\"tokens\":[],\"stop\":true,\"id_slot\":0,\"stop_type\":\"{}\",\"tokens_predicted\":{},\"tokens_evaluated\":{},\"timings\":{{\"prompt_n\":{},\"predicted_n\":{}}}}}\n\n",
                if self.finish_reason() == "length" { "limit" } else { "eos" }, self.sent, self.prompt_tokens, self.prompt_tokens, self.sent
            )),
        }
        out.into_bytes()
    }

    fn schedule_next(&mut self, tokens: u32) {
        for t in 0..tokens {
            self.next_ns += self
                .st
                .timing
                .inter_token_delay(self.seq, self.sent + t)
                .as_nanos() as u64;
        }
        self.sleep
            .as_mut()
            .reset(clock::instant_of(self.next_ns).into());
    }
}

impl Body for SimStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.phase {
            Phase::Done => return Poll::Ready(None),
            Phase::Stalled => return Poll::Pending,
            Phase::Tail => {
                this.phase = Phase::Done;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(this.tail())))));
            }
            Phase::Tokens => {}
        }
        match this.tokens.as_mut() {
            Some(rx) => {
                let want = this.sent + this.st.tokens_per_chunk.min(this.n - this.sent);
                while this.ready < want {
                    match rx.poll_recv(cx) {
                        Poll::Ready(Some(t)) => {
                            this.ready += 1;
                            this.ready_ns = t;
                        }
                        Poll::Ready(None) => {
                            this.phase = Phase::Done;
                            return Poll::Ready(Some(Err("the simulated engine stopped".into())));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                if this.reset_armed {
                    ready!(this.sleep.as_mut().poll(cx));
                }
            }
            None => ready!(this.sleep.as_mut().poll(cx)),
        }
        if let Some((fault, after)) = this.fault {
            if this.chunks == after {
                match fault {
                    Fault::Reset if !this.reset_armed => {
                        // The chunks before a reset reach the client first: a reset
                        // discards whatever the client has not read yet, and on a
                        // busy machine 1 ms is not enough to read it.
                        this.reset_armed = true;
                        let at = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
                        this.sleep.as_mut().reset(at);
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Fault::Reset => {
                        this.phase = Phase::Done;
                        return Poll::Ready(Some(Err("simulated connection reset".into())));
                    }
                    Fault::Stall => {
                        this.phase = Phase::Stalled;
                        return Poll::Pending;
                    }
                    Fault::Malformed => {
                        this.fault = None;
                        let bad = format!("{}\"text\":\"unterminated\n\n", this.prefix);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bad)))));
                    }
                    Fault::NonUtf8 => {
                        this.fault = None;
                        let mut bad = this.prefix.clone().into_bytes();
                        bad.extend_from_slice(
                            b"\"text\":\"\xff\xfe\xfd\",\"finish_reason\":null}]}\n\n",
                        );
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bad)))));
                    }
                    Fault::ErrorEvent => {
                        this.phase = Phase::Done;
                        let ev = "data: {\"error\":{\"object\":\"error\",\"message\":\"simulated error in the stream\",\"type\":\"InternalServerError\",\"code\":500}}\n\ndata: [DONE]\n\n";
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                            ev.as_bytes(),
                        )))));
                    }
                    Fault::Http500 | Fault::Http429 => {}
                }
            }
        }
        let k = this.st.tokens_per_chunk.min(this.n - this.sent);
        let bytes = this.token_chunk(k);
        this.chunks += 1;
        this.truth.chunk_ns.push(clock::now_ns());
        this.truth.chunk_tokens.push(k);
        if this.tokens.is_some() {
            this.truth.step_end_ns.push(this.ready_ns);
        }
        if this.sent >= this.n {
            this.phase = Phase::Tail;
            this.permit = None;
        } else if this.tokens.is_none() {
            let next_k = this.st.tokens_per_chunk.min(this.n - this.sent);
            this.schedule_next(next_k);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        if self.tokens.is_none() {
            self.st.stats.finish_generating();
        }
        if self.st.truth.enabled() && !self.request_id.is_empty() {
            self.st.truth.insert(
                std::mem::take(&mut self.request_id),
                std::mem::take(&mut self.truth),
            );
        }
    }
}
