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

/// Answers one request: the route picks the protocol.
pub async fn handle(
    req: Request<Incoming>,
    st: Arc<SimState>,
) -> Result<Response<SimBody>, Infallible> {
    let path = req.uri().path().to_string();
    let post = req.method() == Method::POST;
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => Response::new(SimBody::Full(Some(Bytes::new()))),
        (&Method::GET, "/v1/models") => json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": [{"id": st.model, "object": "model", "created": 0,
                     "owned_by": "moonbench", "root": st.model, "parent": null}]}),
        ),
        (&Method::GET, "/metrics") if st.metrics => Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(SimBody::Full(Some(Bytes::from(st.stats.render(
                &st.model,
                st.max_running,
                &st.engine.as_ref().map(|e| e.stats()).unwrap_or_default(),
            )))))
            .unwrap(),
        // vLLM's dev-mode endpoint: 200 whether or not the engine could drop the
        // cache (it cannot while requests hold blocks), as vLLM answers.
        (&Method::POST, "/reset_prefix_cache") if st.metrics => {
            match &st.engine {
                Some(e) => {
                    e.reset_prefix_cache().await;
                }
                None => st.stats.reset_prefix_cache(),
            }
            Response::new(SimBody::Full(Some(Bytes::new())))
        }
        (&Method::POST, "/start_profile" | "/stop_profile") if st.metrics => {
            st.stats.profile_call(path == "/start_profile");
            json_response(StatusCode::OK, &json!({}))
        }
        // The ground truth for a client in another process (`serve-sim
        // --record-truth`): the entries whose request id starts with `prefix` (taken
        // as given, not percent-decoded), removed as they are served. Times are ns
        // since this process's epoch, whose raw CLOCK_MONOTONIC reading is given.
        (&Method::GET, "/moonbench/truth") if st.truth.enabled() => {
            let prefix = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .unwrap_or("");
            let entries: Vec<Value> = st
                .truth
                .take_prefix(prefix)
                .into_iter()
                .map(|(id, t)| {
                    json!({"id": id, "received_ns": t.received_ns, "chunk_ns": t.chunk_ns,
                           "chunk_tokens": t.chunk_tokens})
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({"clock": "CLOCK_MONOTONIC",
                        "epoch_monotonic_ns": clock::monotonic_epoch_ns().to_string(),
                        "requests": entries}),
            )
        }
        (&Method::POST, "/v1/completions") => generate(req, st, Route::Completions).await,
        (&Method::POST, "/v1/chat/completions") => generate(req, st, Route::Chat).await,
        (&Method::POST, "/v1/embeddings" | "/embeddings") => {
            generate(req, st, Route::Pool(Pool::Embeddings)).await
        }
        (&Method::POST, "/pooling") => generate(req, st, Route::Pool(Pool::Pooling)).await,
        (&Method::POST, "/rerank" | "/v1/rerank" | "/v2/rerank") => {
            generate(req, st, Route::Pool(Pool::Rerank)).await
        }
        (&Method::POST, "/v1/responses") => generate(req, st, Route::Responses).await,
        (&Method::POST, "/v1/audio/transcriptions" | "/v1/audio/translations") => {
            generate(req, st, Route::Audio).await
        }
        (&Method::POST, "/tokenize") => tokenize(req, &st).await,
        (&Method::POST, "/generate") => generate(req, st, Route::Generate).await,
        (&Method::POST, "/generate_stream") => generate(req, st, Route::TgiStream).await,
        (&Method::POST, "/completion" | "/completions") => generate(req, st, Route::LlamaCpp).await,
        (_, p) if post && p.starts_with("/v2/models/") && p.ends_with("/generate_stream") => {
            generate(req, st, Route::TrtLlm { stream: true }).await
        }
        (_, p) if post && p.starts_with("/v2/models/") && p.ends_with("/generate") => {
            generate(req, st, Route::TrtLlm { stream: false }).await
        }
        (_, p) if post && p.starts_with("/mii/") => generate(req, st, Route::Mii).await,
        _ => json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not Found"})),
    };
    Ok(resp)
}

/// `/tokenize` as vLLM answers it (`{prompt}` → `{count, tokens}`; the simulator
/// has no context limit, so no `max_model_len`) or, for llama.cpp's `{content}`, as
/// llama-server does (`{tokens}`); counted with the simulator's tokenizer.
async fn tokenize(req: Request<Incoming>, st: &SimState) -> Response<SimBody> {
    let body: Value = match req.into_body().collect().await {
        Ok(b) => serde_json::from_slice(&b.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if let Some(text) = body["content"].as_str() {
        return json_response(
            StatusCode::OK,
            &json!({"tokens": st.tokenizer.encode(text)}),
        );
    }
    match body["prompt"].as_str() {
        Some(text) => {
            let ids = st.tokenizer.encode(text);
            json_response(
                StatusCode::OK,
                &json!({"count": ids.len(), "tokens": ids, "token_strs": null}),
            )
        }
        None => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"object": "error", "message": "prompt: Field required", "type": "BadRequestError", "code": 400}),
        ),
    }
}

/// The protocol of a request, from its route (and, for `/generate`, its body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Completions,
    Chat,
    /// A pooling API: one JSON answer, no output tokens.
    Pool(Pool),
    /// OpenAI Responses (`input`, typed events).
    Responses,
    /// The transcription API: a multipart form with the audio file.
    Audio,
    /// SGLang's `/generate` (`text`/`input_ids`) or TGI's (`inputs`).
    Generate,
    TgiStream,
    TrtLlm {
        stream: bool,
    },
    LlamaCpp,
    Mii,
}

/// Which pooling answer a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// `data[].embedding` (OpenAI embeddings, with `input` or `messages`).
    Embeddings,
    /// `data[].data` (vLLM's `/pooling`).
    Pooling,
    /// `results[].relevance_score` (vLLM's `/rerank`).
    Rerank,
}

/// What a request asks for, whatever its protocol.
struct Ask {
    /// Why the request is invalid (answered with HTTP 400), if it is.
    invalid: Option<String>,
    prompt_text: String,
    prompt_tokens: u32,
    max_tokens: u32,
    min_tokens: u32,
    ignore_eos: bool,
    stream: bool,
    include_usage: bool,
    continuous: bool,
    /// Inputs of a pooling request (texts, or a rerank's documents).
    inputs: u32,
}

/// Prompt tokens the simulator charges for each image (a vision encoder's patches).
pub const IMAGE_TOKENS: u32 = 64;

/// Checks an `image_url.url`: a `data:image/...;base64,` URL whose payload decodes,
/// an http(s) URL (not fetched), or a `file://` URL of an image on this machine's
/// disk (read as vLLM reads them under `--allowed-local-media-path`).
fn check_image(url: &Value) -> Result<(), String> {
    use base64::Engine;
    let Some(url) = url.as_str() else {
        return Err("image_url.url must be a string".into());
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    if let Some(path) = url.strip_prefix("file://") {
        let path = crate::dataset::percent_decode(path);
        let mut head = [0u8; 12];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| format!("cannot load the local image {path}: {e}"))?;
        return crate::dataset::image_mime(&head[..n])
            .map(|_| ())
            .ok_or_else(|| format!("the local file {path} is not an image"));
    }
    let Some(rest) = url.strip_prefix("data:image/") else {
        return Err(format!(
            "image_url.url must be an http(s), file:// or data:image/...;base64, URL, got '{}'",
            url.chars().take(40).collect::<String>()
        ));
    };
    let Some((_, payload)) = rest.split_once(";base64,") else {
        return Err("a data URL image must be base64-encoded (data:image/png;base64,...)".into());
    };
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map(|_| ())
        .map_err(|e| format!("the image data URL is not valid base64: {e}"))
}

fn prompt_of(st: &SimState, v: &Value) -> (String, u32) {
    match v {
        Value::String(s) => (s.clone(), st.tokenizer.count(s) as u32),
        Value::Array(a) if a.iter().all(|x| x.is_u64()) => (
            a.iter()
                .map(|x| format!("t{x}"))
                .collect::<Vec<_>>()
                .join(" "),
            a.len() as u32,
        ),
        Value::Array(a) => prompt_of(st, a.first().unwrap_or(&Value::Null)),
        _ => (String::new(), 0),
    }
}

fn ask(st: &SimState, body: &Value, route: Route) -> Ask {
    let u = |v: &Value| v.as_u64().map(|x| x as u32);
    let b = |v: &Value| v.as_bool() == Some(true);
    let mut a = Ask {
        invalid: None,
        prompt_text: String::new(),
        prompt_tokens: 0,
        max_tokens: st.default_max_tokens,
        min_tokens: 0,
        ignore_eos: false,
        stream: b(&body["stream"]),
        include_usage: b(&body["stream_options"]["include_usage"]),
        continuous: b(&body["stream_options"]["continuous_usage_stats"]),
        inputs: 1,
    };
    match route {
        Route::Completions | Route::Mii => {
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["prompt"]);
            a.max_tokens = u(&body["max_tokens"]).unwrap_or(16);
            a.min_tokens = u(&body["min_tokens"]).unwrap_or(0);
            a.ignore_eos = b(&body["ignore_eos"]);
        }
        Route::Chat => {
            messages_prompt(st, &body["messages"], &mut a);
            a.max_tokens = u(&body["max_completion_tokens"])
                .or(u(&body["max_tokens"]))
                .unwrap_or(st.default_max_tokens);
            a.min_tokens = u(&body["min_tokens"]).unwrap_or(0);
            a.ignore_eos = b(&body["ignore_eos"]);
        }
        Route::Audio => {
            match body["file"]["seconds"].as_f64() {
                Some(sec) => a.prompt_tokens = audio_tokens(sec),
                None => {
                    a.invalid = Some("the form has no audio `file` (a WAV or FLAC upload)".into())
                }
            }
            a.max_tokens = u(&body["max_completion_tokens"]).unwrap_or(st.default_max_tokens);
            a.ignore_eos = b(&body["ignore_eos"]);
            a.include_usage = b(&body["stream_include_usage"]);
            a.continuous = b(&body["stream_continuous_usage_stats"]);
        }
        Route::Responses => {
            match &body["input"] {
                Value::String(t) => {
                    a.prompt_tokens = st.tokenizer.count(t) as u32;
                    a.prompt_text = t.clone();
                }
                m @ Value::Array(_) => messages_prompt(st, m, &mut a),
                _ => a.invalid = Some("`input` must be a string or a list of messages".into()),
            }
            a.max_tokens = u(&body["max_output_tokens"]).unwrap_or(st.default_max_tokens);
            a.ignore_eos = b(&body["ignore_eos"]);
        }
        Route::Pool(kind) => {
            let texts = |v: &Value| -> Vec<String> {
                match v {
                    Value::String(t) => vec![t.clone()],
                    Value::Array(a) if a.iter().all(|x| x.is_string()) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    other => vec![prompt_of(st, other).0],
                }
            };
            if kind == Pool::Rerank {
                let (q, docs) = (texts(&body["query"]), texts(&body["documents"]));
                if q.len() != 1 || docs.is_empty() {
                    a.invalid = Some(
                        "a rerank request needs a `query` text and a list of `documents`".into(),
                    );
                }
                let q_tokens = st.tokenizer.count(q.first().map_or("", |s| s)) as u32;
                a.inputs = docs.len() as u32;
                a.prompt_tokens = docs
                    .iter()
                    .map(|d| q_tokens + st.tokenizer.count(d) as u32)
                    .sum();
                a.prompt_text = q.concat();
            } else if body.get("messages").is_some() {
                messages_prompt(st, &body["messages"], &mut a);
            } else if body["input"]
                .as_array()
                .is_some_and(|x| x.iter().all(|t| t.is_u64()))
            {
                (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["input"]);
            } else {
                let t = texts(&body["input"]);
                a.inputs = t.len() as u32;
                a.prompt_tokens = t.iter().map(|x| st.tokenizer.count(x) as u32).sum();
                a.prompt_text = t.concat();
            }
            a.max_tokens = 1;
        }
        Route::Generate if body.get("inputs").is_some() => {
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["inputs"]);
            a.max_tokens = u(&body["parameters"]["max_new_tokens"]).unwrap_or(20);
            a.ignore_eos = b(&body["parameters"]["ignore_eos_token"]);
        }
        Route::Generate => {
            let p = if body.get("input_ids").is_some() {
                &body["input_ids"]
            } else {
                &body["text"]
            };
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, p);
            let sp = &body["sampling_params"];
            a.max_tokens = u(&sp["max_new_tokens"]).unwrap_or(128);
            a.min_tokens = u(&sp["min_new_tokens"]).unwrap_or(0);
            a.ignore_eos = b(&sp["ignore_eos"]);
        }
        Route::TgiStream => {
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["inputs"]);
            a.max_tokens = u(&body["parameters"]["max_new_tokens"]).unwrap_or(20);
            a.ignore_eos = b(&body["parameters"]["ignore_eos_token"]);
            a.stream = true;
        }
        Route::TrtLlm { stream } => {
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["text_input"]);
            a.max_tokens = u(&body["max_tokens"]).unwrap_or(16);
            a.min_tokens = u(&body["min_length"]).unwrap_or(0);
            a.stream = stream;
        }
        Route::LlamaCpp => {
            (a.prompt_text, a.prompt_tokens) = prompt_of(st, &body["prompt"]);
            a.max_tokens = body["n_predict"]
                .as_i64()
                .filter(|n| *n > 0)
                .map_or(st.default_max_tokens, |n| n as u32);
            a.ignore_eos = b(&body["ignore_eos"]);
        }
    }
    a.max_tokens = a.max_tokens.clamp(1, 1 << 20);
    a.min_tokens = a.min_tokens.min(a.max_tokens);
    a
}

/// Reads chat `messages` (text parts and checked images) into `a`'s prompt.
fn messages_prompt(st: &SimState, messages: &Value, a: &mut Ask) {
    let mut text = String::new();
    let mut images = 0u32;
    let mut audio = 0u32;
    for m in messages.as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                for p in parts {
                    match (p["type"].as_str(), p["text"].as_str()) {
                        (_, Some(t)) => text.push_str(t),
                        (Some("image_url"), _) => match check_image(&p["image_url"]["url"]) {
                            Ok(()) => images += 1,
                            Err(e) => a.invalid = Some(e),
                        },
                        (Some("input_audio"), _) => match input_audio_seconds(&p["input_audio"]) {
                            Ok(sec) => audio += audio_tokens(sec),
                            Err(e) => a.invalid = Some(e),
                        },
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        text.push(' ');
    }
    a.prompt_tokens = st.tokenizer.count(&text) as u32 + images * IMAGE_TOKENS + audio;
    a.prompt_text = text;
}

/// Prompt tokens the simulator charges for audio: 50 a second, the rate of
/// Whisper's encoder (1,500 positions for 30 s).
pub const AUDIO_TOKENS_PER_SECOND: f64 = 50.0;

fn audio_tokens(seconds: f64) -> u32 {
    (seconds * AUDIO_TOKENS_PER_SECOND).ceil() as u32
}

/// The length of a chat `input_audio` part (`{data: base64, format}`).
fn input_audio_seconds(v: &Value) -> Result<f64, String> {
    use base64::Engine;
    let data = v["data"]
        .as_str()
        .ok_or("input_audio.data must be base64 audio")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("input_audio.data is not valid base64: {e}"))?;
    crate::dataset::audio::probe(&bytes)
        .map(|(_, sec)| sec)
        .map_err(|e| format!("input_audio: {e}"))
}

/// A multipart/form-data body as a JSON object: each field's text (`True`/`true`
/// as booleans, numbers as numbers), and an uploaded file as
/// `{"format", "seconds", "bytes"}` from its audio header.
fn parse_form(body: &[u8], boundary: &str) -> Result<Value, String> {
    let delim = format!("--{boundary}");
    let mut out = serde_json::Map::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delim.as_bytes()).ok_or("the form has no part (boundary not found)")?;
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let rest2 = rest
            .strip_prefix(b"\r\n")
            .ok_or("a form part does not start a line")?;
        let head_end = find(rest2, b"\r\n\r\n").ok_or("a form part has no header end")?;
        let head = String::from_utf8_lossy(&rest2[..head_end]).into_owned();
        let data_and_more = &rest2[head_end + 4..];
        let end = find(data_and_more, format!("\r\n{delim}").as_bytes())
            .ok_or("a form part is not closed by the boundary")?;
        let data = &data_and_more[..end];
        let attr = |key: &str| {
            head.split(';')
                .find_map(|kv| kv.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        let name = attr("name").ok_or("a form part has no name")?;
        let value = if attr("filename").is_some() {
            let (format, seconds) =
                crate::dataset::audio::probe(data).map_err(|e| format!("field `{name}`: {e}"))?;
            json!({"format": format, "seconds": seconds, "bytes": data.len()})
        } else {
            let t = String::from_utf8_lossy(data).into_owned();
            match t.as_str() {
                "True" | "true" => json!(true),
                "False" | "false" => json!(false),
                _ => serde_json::from_str::<serde_json::Number>(&t)
                    .map(Value::Number)
                    .unwrap_or(Value::String(t)),
            }
        };
        out.insert(name, value);
        rest = &data_and_more[end + 2 + delim.len()..];
    }
    Ok(Value::Object(out))
}

fn stream_format(route: Route, body: &Value) -> Format {
    match route {
        Route::Completions => Format::Completions,
        Route::Chat => Format::Chat,
        Route::Generate if body.get("inputs").is_some() => Format::Tgi,
        Route::Generate => Format::Sglang,
        Route::TgiStream => Format::Tgi,
        Route::TrtLlm { .. } => Format::TrtLlm,
        Route::LlamaCpp => Format::LlamaCpp,
        Route::Responses => Format::Responses,
        Route::Audio => Format::Transcription,
        Route::Pool(_) | Route::Mii => Format::Completions,
    }
}

/// A generation request, from its body to the simulated answer: read and check
/// the request, pick its fault, its output length and its prefill, then stream
/// the tokens or answer at once when the last would have been generated.
async fn generate(req: Request<Incoming>, st: Arc<SimState>, route: Route) -> Response<SimBody> {
    let (body, request_id, fault_header, received_ns) = match read_request(req).await {
        Ok(r) => r,
        Err(r) => return r.response(),
    };
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let fault = match pick_fault(&st, &body, fault_header, seq) {
        Ok(f) => f,
        Err(r) => return r.response(),
    };
    if let Some(r) = check_model(&st, &body, route) {
        return r.response();
    }
    let a = ask(&st, &body, route);
    if let Some(why) = &a.invalid {
        return error_response(StatusCode::BAD_REQUEST, why, "BadRequestError");
    }
    let n = output_len(&st, &a, route, seq);
    let created = chrono::Utc::now().timestamp();
    let format = stream_format(route, &body);
    // When each token is ready: the step engine says so as it runs, the fixed
    // model computes it from the start and the uncached prefill.
    let mut permit = None;
    let mut tokens = None;
    let mut prefill_tokens = a.prompt_tokens;
    if let Some(engine) = &st.engine {
        if let Err(e) = engine.admissible(a.prompt_tokens, a.max_tokens) {
            return error_response(StatusCode::BAD_REQUEST, &e, "BadRequestError");
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let submitted = engine.submit(super::engine::Submission {
            prompt_tokens: a.prompt_tokens,
            output_tokens: n.max(1),
            block_hashes: block_hashes(&st, &a, seq, n, engine.config.block_size),
            tx,
            arrived_ns: received_ns,
        });
        if let Ok(i) = submitted {
            engine.list[i].stats.count_request(n);
        }
        if let Err(e) = submitted {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &e,
                "ServiceUnavailableError",
            );
        }
        tokens = Some(rx);
    } else {
        st.stats.start_waiting();
        permit = match &st.running {
            Some(sem) => sem.clone().acquire_owned().await.ok(),
            None => None,
        };
        st.stats.start_generating(n);
        // Prefill costs only the prompt tokens the prefix cache does not already hold.
        let cached = st.stats.prefix_lookup(&a.prompt_text) as u32;
        prefill_tokens = a.prompt_tokens.saturating_sub(cached);
    }
    let start_ns = clock::now_ns();
    if a.stream && !matches!(route, Route::Pool(_) | Route::Mii) {
        let (prefix, head) = stream_heads(&st, format, seq, created);
        let mut s = SimStream::new(
            st.clone(),
            seq,
            n,
            a.max_tokens,
            a.prompt_tokens,
            format,
            prefix,
            head,
            received_ns,
            start_ns,
        );
        s.set_prefill_tokens(prefill_tokens);
        s.include_usage = a.include_usage;
        s.continuous_usage = a.continuous;
        s.request_id = request_id;
        s.permit = permit;
        s.tokens = tokens;
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
    if fault == Some(Fault::Stall) {
        std::future::pending::<()>().await;
    }
    let mut step_end_ns = Vec::new();
    match tokens.as_mut() {
        Some(rx) => {
            for _ in 0..n.max(1) {
                if let Some(t) = rx.recv().await {
                    step_end_ns = vec![t];
                } else {
                    return error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the simulated engine stopped",
                        "InternalServerError",
                    );
                }
            }
        }
        None => {
            let t = token_ready_ns(
                st.timing.as_ref(),
                seq,
                prefill_tokens,
                start_ns,
                n.saturating_sub(1),
            );
            tokio::time::sleep_until(clock::instant_of(t).into()).await;
            drop(permit);
            st.stats.finish_generating();
        }
    }
    st.truth.insert(
        request_id,
        Truth {
            received_ns,
            chunk_ns: vec![clock::now_ns()],
            chunk_tokens: vec![n],
            step_end_ns,
        },
    );
    json_response(
        StatusCode::OK,
        &unary_answer(&st, &a, route, format, seq, n, created),
    )
}

/// The chained hashes of a request's full KV blocks for the step engine's prefix
/// cache: its prompt's tokens, then its answer's (so a later turn that repeats the
/// answer finds it cached, as vLLM caches generated blocks). With the word-count
/// tokenizer the words themselves are hashed.
fn block_hashes(st: &SimState, a: &Ask, seq: u64, n: u32, block_size: u32) -> Vec<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let keys = |text: &str| -> Vec<u64> {
        if st.tokenizer.is_words() {
            text.split_whitespace()
                .map(|w| {
                    let mut h = DefaultHasher::new();
                    w.hash(&mut h);
                    h.finish()
                })
                .collect()
        } else {
            st.tokenizer
                .encode(text)
                .into_iter()
                .map(u64::from)
                .collect()
        }
    };
    let mut ids = keys(&a.prompt_text);
    // Images (or ids the text does not show) shift positions: hash the prompt only.
    if ids.len() == a.prompt_tokens as usize {
        let answer: String = (0..n).map(|k| token_text(seq, k)).collect();
        ids.extend(keys(&answer));
    }
    let mut chain = 0u64;
    ids.chunks_exact(block_size.max(1) as usize)
        .map(|block| {
            let mut h = DefaultHasher::new();
            chain.hash(&mut h);
            block.hash(&mut h);
            chain = h.finish();
            chain
        })
        .collect()
}

/// An answer refusing a request: its status, message and error type.
struct Refusal(StatusCode, String, &'static str);

impl Refusal {
    fn new(status: StatusCode, message: &str, kind: &'static str) -> Refusal {
        Refusal(status, message.to_string(), kind)
    }

    fn response(self) -> Response<SimBody> {
        error_response(self.0, &self.1, self.2)
    }
}

/// The request's JSON body, its `x-request-id`, its `x-moonbench-fault` and when
/// it was received; or the error response for a body that is not a JSON object.
async fn read_request(
    req: Request<Incoming>,
) -> Result<(Value, String, Option<String>, u64), Refusal> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request_id = header("x-request-id").unwrap_or_default();
    let fault_header = header("x-moonbench-fault");
    let boundary = header("content-type").and_then(|c| {
        c.strip_prefix("multipart/form-data")
            .and_then(|r| r.split("boundary=").nth(1))
            .map(|b| b.trim_matches('"').to_string())
    });
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
                "BadRequestError",
            ));
        }
    };
    let received_ns = clock::now_ns();
    if let Some(boundary) = boundary {
        return match parse_form(&bytes, &boundary) {
            Ok(body) => Ok((body, request_id, fault_header, received_ns)),
            Err(e) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                &format!("invalid multipart form: {e}"),
                "BadRequestError",
            )),
        };
    }
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object",
                "BadRequestError",
            ));
        }
        Err(e) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON body: {e}"),
                "BadRequestError",
            ));
        }
    };
    Ok((body, request_id, fault_header, received_ns))
}

/// The fault this request plays: the one it names (body `moonbench_fault` or
/// the header), else one drawn from `--faults`; HTTP faults answer at once.
fn pick_fault(
    st: &SimState,
    body: &Value,
    fault_header: Option<String>,
    seq: u64,
) -> Result<Option<Fault>, Refusal> {
    let fault_name = body["moonbench_fault"]
        .as_str()
        .map(str::to_string)
        .or(fault_header);
    let fault = match fault_name {
        Some(name) => match Fault::parse(&name) {
            Ok(f) => Some(f),
            Err(e) => {
                return Err(Refusal::new(StatusCode::BAD_REQUEST, &e, "BadRequestError"));
            }
        },
        None => st.faults.pick(st.seed, seq),
    };
    match fault {
        Some(Fault::Http500) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated internal error",
            "InternalServerError",
        )),
        Some(Fault::Http429) => Err(Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "simulated rate limit",
            "RateLimitError",
        )),
        f => Ok(f),
    }
}

/// A 404 for a model the simulator does not serve (OpenAI routes), as vLLM answers.
fn check_model(st: &SimState, body: &Value, route: Route) -> Option<Refusal> {
    if matches!(
        route,
        Route::Completions | Route::Chat | Route::Pool(_) | Route::Responses | Route::Audio
    ) {
        if let Some(m) = body["model"].as_str() {
            if m != st.model {
                return Some(Refusal::new(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "The model `{m}` does not exist. This server serves `{}`.",
                        st.model
                    ),
                    "NotFoundError",
                ));
            }
        }
    }
    None
}

/// How many tokens the answer has: `max_tokens` when end-of-sequence is ignored
/// (and honoured) or `min_tokens` reaches it, else a seeded draw up to it.
fn output_len(st: &SimState, a: &Ask, route: Route, seq: u64) -> u32 {
    if matches!(route, Route::Pool(_)) {
        0
    } else if (a.ignore_eos && st.honor_ignore_eos) || a.min_tokens >= a.max_tokens {
        a.max_tokens
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(
            st.seed
                .wrapping_add(seq.wrapping_mul(0x2545_F491_4F6C_DD1D)),
        );
        rng.random_range(a.min_tokens.max(1)..=a.max_tokens)
    }
}

/// The fixed heads of the stream's chunks (OpenAI formats carry id, object,
/// created and model in each).
fn stream_heads(st: &SimState, format: Format, seq: u64, created: i64) -> (String, String) {
    let model_json = serde_json::to_string(&st.model).unwrap();
    let (id, object) = match format {
        Format::Chat => (format!("chatcmpl-{seq}"), "chat.completion.chunk"),
        Format::Transcription => (format!("trsc-{seq}"), "transcription.chunk"),
        _ => (format!("cmpl-{seq}"), "text_completion"),
    };
    let head = format!(
        "data: {{\"id\":\"{id}\",\"object\":\"{object}\",\"created\":{created},\"model\":{model_json},"
    );
    let prefix = format!("{head}\"choices\":[{{\"index\":0,");
    (prefix, head)
}

/// A pooling answer, shaped as vLLM's: one embedding (or pooler output) per input,
/// or one score per document sorted by relevance; `usage` as vLLM reports it
/// (a rerank answer has `total_tokens` only).
fn pool_answer(st: &SimState, a: &Ask, kind: Pool, seq: u64, created: i64) -> Value {
    const VECTOR: [f64; 8] = [0.125, -0.25, 0.5, 0.0625, -0.5, 0.25, 0.75, -0.125];
    let usage = json!({"prompt_tokens": a.prompt_tokens, "total_tokens": a.prompt_tokens});
    match kind {
        Pool::Embeddings => {
            let data: Vec<Value> = (0..a.inputs)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": VECTOR}))
                .collect();
            json!({"object": "list", "model": st.model, "usage": usage, "data": data})
        }
        Pool::Pooling => {
            let data: Vec<Value> = (0..a.inputs)
                .map(|i| json!({"index": i, "object": "pooling", "data": VECTOR}))
                .collect();
            json!({"id": format!("pool-{seq}"), "object": "list", "created": created, "model": st.model,
                "data": data, "usage": usage})
        }
        Pool::Rerank => {
            let mut results: Vec<Value> = (0..a.inputs)
                .map(|i| json!({"index": i, "relevance_score": 1.0 / (1.0 + i as f64)}))
                .collect();
            results.sort_by(|x, y| {
                y["relevance_score"]
                    .as_f64()
                    .partial_cmp(&x["relevance_score"].as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            json!({"id": format!("rerank-{seq}"), "model": st.model, "usage": {"total_tokens": a.prompt_tokens},
                "results": results})
        }
    }
}

/// The whole answer of a request that is not streamed, in its API's format.
fn unary_answer(
    st: &SimState,
    a: &Ask,
    route: Route,
    format: Format,
    seq: u64,
    n: u32,
    created: i64,
) -> Value {
    let text: String = (0..n).map(|k| token_text(seq, k)).collect();
    let finish = if n >= a.max_tokens { "length" } else { "stop" };
    let usage = json!({"prompt_tokens": a.prompt_tokens, "total_tokens": a.prompt_tokens + n, "completion_tokens": n});
    match (route, format) {
        (Route::Pool(kind), _) => pool_answer(st, a, kind, seq, created),
        (Route::Responses, _) => {
            let (think, answer) =
                super::stream::split_tokens(seq, 0, st.reasoning_tokens.min(n), n);
            let mut output = Vec::new();
            if !think.is_empty() {
                output.push(
                    json!({"id": format!("rs_{seq}"), "type": "reasoning", "summary": [],
                    "content": [{"type": "reasoning_text", "text": think}]}),
                );
            }
            output.push(json!({"id": format!("msg_{seq}"), "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": answer, "annotations": []}]}));
            json!({"id": format!("resp_{seq}"), "object": "response", "created_at": created, "model": st.model,
                "status": if finish == "length" { "incomplete" } else { "completed" }, "output": output,
                "usage": {"input_tokens": a.prompt_tokens, "output_tokens": n, "total_tokens": a.prompt_tokens + n}})
        }
        (Route::Mii, _) => json!({"text": [text]}),
        (Route::Audio, _) => {
            json!({"text": text, "usage": {"type": "tokens", "input_tokens": a.prompt_tokens,
            "output_tokens": n, "total_tokens": a.prompt_tokens + n}})
        }
        (_, Format::Chat) => {
            let (think, answer) =
                super::stream::split_tokens(seq, 0, st.reasoning_tokens.min(n), n);
            let mut message = json!({"role": "assistant", "content": answer});
            if !think.is_empty() {
                message["reasoning_content"] = json!(think);
            }
            json!({"id": format!("chatcmpl-{seq}"), "object": "chat.completion", "created": created, "model": st.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}], "usage": usage})
        }
        (_, Format::Sglang) => {
            json!({"text": text, "meta_info": {"id": seq.to_string(), "finish_reason": {"type": finish, "length": n},
            "prompt_tokens": a.prompt_tokens, "completion_tokens": n, "cached_tokens": 0}})
        }
        (_, Format::Tgi) => {
            json!({"generated_text": text, "details": {"finish_reason": if finish == "length" { "length" } else { "eos_token" },
            "generated_tokens": n, "seed": null, "input_length": a.prompt_tokens}})
        }
        (_, Format::TrtLlm) => {
            json!({"model_name": "ensemble", "model_version": "1", "text_output": text})
        }
        (_, Format::LlamaCpp) => {
            json!({"index": 0, "content": text, "stop": true, "tokens_predicted": n, "tokens_evaluated": a.prompt_tokens,
            "timings": {"prompt_n": a.prompt_tokens, "predicted_n": n}})
        }
        _ => {
            json!({"id": format!("cmpl-{seq}"), "object": "text_completion", "created": created, "model": st.model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null}], "usage": usage})
        }
    }
}
