//! The simulator's HTTP server (hyper): routes, request parsing, admission, and
//! non-streamed answers. Streamed answers are [`super::stream::SimStream`]s.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::SimState;
use super::faults::Fault;
use super::stream::{BoxError, Format, SimStream, token_text};
use super::timing::token_ready_ns;
use super::truth::Truth;
use crate::clock;

/// A response body: a whole buffer or a token stream.
pub enum SimBody {
    /// A complete body.
    Full(Option<Bytes>),
    /// A streamed answer.
    Stream(Box<SimStream>),
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Stream(s) => Pin::new(s.as_mut()).poll_frame(cx),
        }
    }
    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(b) => b.is_none(),
            SimBody::Stream(s) => s.is_end_stream(),
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Stream(_) => SizeHint::default(),
        }
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<SimBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(SimBody::Full(Some(Bytes::from(v.to_string()))))
        .unwrap()
}

fn error_response(status: StatusCode, message: &str, kind: &str) -> Response<SimBody> {
    json_response(
        status,
        &json!({"object": "error", "message": message, "type": kind, "param": null, "code": status.as_u16(),
                "error": {"message": message, "type": kind, "code": status.as_u16()}}),
    )
}

/// Serves connections from `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    st: Arc<SimState>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(req, st.clone()));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(tcp), svc)
                            .await;
                    });
                }
                Err(e) => {
                    eprintln!("simulator: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
}

/// Answers one request.
pub async fn handle(
    req: Request<Incoming>,
    st: Arc<SimState>,
) -> Result<Response<SimBody>, Infallible> {
    let path = req.uri().path().to_string();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => Response::new(SimBody::Full(Some(Bytes::new()))),
        (&Method::GET, "/v1/models") => json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": [{"id": st.model, "object": "model", "created": 0,
                     "owned_by": "moonbench", "root": st.model, "parent": null}]}),
        ),
        (&Method::POST, "/v1/completions") => generate(req, st, Format::Completions).await,
        (&Method::POST, "/v1/chat/completions") => generate(req, st, Format::Chat).await,
        _ => json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not Found"})),
    };
    Ok(resp)
}

fn count_prompt(st: &SimState, body: &Value, format: Format) -> u32 {
    let count_text = |v: &Value| -> usize {
        match v {
            Value::String(s) => st.tokenizer.count(s),
            Value::Array(a) if a.iter().all(|x| x.is_u64()) => a.len(),
            Value::Array(a) => a
                .first()
                .and_then(|x| x.as_str())
                .map_or(0, |s| st.tokenizer.count(s)),
            _ => 0,
        }
    };
    match format {
        Format::Completions => count_text(&body["prompt"]) as u32,
        Format::Chat => body["messages"]
            .as_array()
            .map(|msgs| {
                msgs.iter()
                    .map(|m| match &m["content"] {
                        Value::String(s) => st.tokenizer.count(s),
                        Value::Array(parts) => parts
                            .iter()
                            .filter_map(|p| p["text"].as_str())
                            .map(|s| st.tokenizer.count(s))
                            .sum(),
                        _ => 0,
                    })
                    .sum::<usize>()
            })
            .unwrap_or(0) as u32,
    }
}

async fn generate(req: Request<Incoming>, st: Arc<SimState>, format: Format) -> Response<SimBody> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request_id = header("x-request-id").unwrap_or_default();
    let fault_header = header("x-moonbench-fault");
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
                "BadRequestError",
            );
        }
    };
    let received_ns = clock::now_ns();
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object",
                "BadRequestError",
            );
        }
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON body: {e}"),
                "BadRequestError",
            );
        }
    };
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let fault_name = body["moonbench_fault"]
        .as_str()
        .map(str::to_string)
        .or(fault_header);
    let fault = match fault_name {
        Some(name) => match Fault::parse(&name) {
            Ok(f) => Some(f),
            Err(e) => return error_response(StatusCode::BAD_REQUEST, &e, "BadRequestError"),
        },
        None => st.faults.pick(st.seed, seq),
    };
    match fault {
        Some(Fault::Http500) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated internal error",
                "InternalServerError",
            );
        }
        Some(Fault::Http429) => {
            return error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "simulated rate limit",
                "RateLimitError",
            );
        }
        _ => {}
    }
    if let Some(m) = body["model"].as_str() {
        if m != st.model {
            return error_response(
                StatusCode::NOT_FOUND,
                &format!(
                    "The model `{m}` does not exist. This server serves `{}`.",
                    st.model
                ),
                "NotFoundError",
            );
        }
    }
    let max_tokens = match format {
        Format::Completions => body["max_tokens"].as_u64().unwrap_or(16),
        Format::Chat => body["max_completion_tokens"]
            .as_u64()
            .or(body["max_tokens"].as_u64())
            .unwrap_or(st.default_max_tokens as u64),
    }
    .clamp(1, 1 << 20) as u32;
    let min_tokens = body["min_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(max_tokens as u64) as u32;
    let n = if body["ignore_eos"].as_bool() == Some(true) || min_tokens >= max_tokens {
        max_tokens
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(
            st.seed
                .wrapping_add(seq.wrapping_mul(0x2545_F491_4F6C_DD1D)),
        );
        rng.random_range(min_tokens.max(1)..=max_tokens)
    };
    let prompt_tokens = count_prompt(&st, &body, format);
    let stream = body["stream"].as_bool() == Some(true);
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let continuous = body["stream_options"]["continuous_usage_stats"].as_bool() == Some(true);
    let permit = match &st.running {
        Some(sem) => sem.clone().acquire_owned().await.ok(),
        None => None,
    };
    let start_ns = clock::now_ns();
    let created = chrono::Utc::now().timestamp();
    let model_json = serde_json::to_string(&st.model).unwrap();
    let (id, object) = match format {
        Format::Completions => (format!("cmpl-{seq}"), "text_completion"),
        Format::Chat => (
            format!("chatcmpl-{seq}"),
            if stream {
                "chat.completion.chunk"
            } else {
                "chat.completion"
            },
        ),
    };
    let head = format!(
        "data: {{\"id\":\"{id}\",\"object\":\"{object}\",\"created\":{created},\"model\":{model_json},"
    );
    if stream {
        let prefix = format!("{head}\"choices\":[{{\"index\":0,");
        let mut s = SimStream::new(
            st.clone(),
            seq,
            n,
            max_tokens,
            prompt_tokens,
            format,
            prefix,
            head,
            received_ns,
            start_ns,
        );
        s.include_usage = include_usage;
        s.continuous_usage = continuous;
        s.request_id = request_id;
        s.permit = permit;
        s.fault = fault.map(|f| {
            (
                f,
                if f == Fault::Malformed || f == Fault::NonUtf8 {
                    1
                } else {
                    2.min(n)
                },
            )
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream; charset=utf-8")
            .header("cache-control", "no-cache")
            .body(SimBody::Stream(Box::new(s)))
            .unwrap();
    }
    // Not streamed: wait until the last token would have been generated, then answer.
    let t = token_ready_ns(st.timing.as_ref(), seq, prompt_tokens, start_ns, n - 1);
    if fault == Some(Fault::Stall) {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep_until(clock::instant_of(t).into()).await;
    drop(permit);
    let text: String = (0..n).map(|k| token_text(seq, k)).collect();
    let finish = if n >= max_tokens { "length" } else { "stop" };
    let choice = match format {
        Format::Completions => {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null})
        }
        Format::Chat => {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": finish})
        }
    };
    st.truth.insert(
        request_id,
        Truth {
            received_ns,
            chunk_ns: vec![clock::now_ns()],
            chunk_tokens: vec![n],
        },
    );
    json_response(
        StatusCode::OK,
        &json!({"id": id, "object": object, "created": created, "model": st.model, "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + n, "completion_tokens": n}}),
    )
}
