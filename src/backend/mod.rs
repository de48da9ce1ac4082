//! Server APIs: where a request body is built for each backend, where its response
//! (SSE stream or JSON) is decoded, and the HTTP client that carries both.
//!
//! `exec.rs` runs one request end to end and is where every token's arrival is
//! timestamped; `http.rs` is the connection layer; `sse.rs` the event-stream
//! decoder; `openai.rs` the OpenAI completions/chat formats, `audio.rs` the
//! transcription API (multipart requests), `responses.rs` the Responses API, `pooling.rs` the pooling APIs (embeddings, `/pooling`, `/rerank`);
//! one file per native API (`sglang.rs`, `tgi.rs`, `trtllm.rs`, `llamacpp.rs`, `mii.rs`).

pub mod audio;
pub mod exec;
pub mod h1;
pub mod http;
pub mod llamacpp;
pub mod mii;
pub mod openai;
pub mod pooling;
pub mod protocol;
pub mod responses;
pub mod sglang;
pub mod sse;
pub mod tgi;
pub mod tokenize;
pub mod trtllm;

use std::time::Duration;

use serde_json::{Map, Value};

/// Which server API a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI `/v1/completions` (vLLM, SGLang, LMDeploy, llama.cpp's OpenAI API, ...).
    Completions,
    /// OpenAI `/v1/chat/completions`.
    Chat,
    /// OpenAI `/v1/embeddings` with `input` (latency and throughput only).
    Embeddings,
    /// vLLM's `/v1/embeddings` with chat `messages` (rendered by the server's template).
    EmbeddingsChat,
    /// Infinity's `/embeddings` (`input`, no vLLM-only fields).
    Infinity,
    /// vLLM's `/pooling` (the raw pooler output: `data[].data`).
    Pooling,
    /// vLLM's `/rerank` (Jina/Cohere-compatible: a query and its documents).
    Rerank,
    /// OpenAI Responses `/v1/responses` (typed streaming events).
    Responses,
    /// OpenAI `/v1/audio/transcriptions` or `/translations` (a multipart form with
    /// the audio file; chat-like chunks or transcript events back).
    Audio,
    /// SGLang's native `/generate` (cumulative text with `meta_info`).
    Sglang,
    /// Text Generation Inference's `/generate_stream`.
    Tgi,
    /// TensorRT-LLM (Triton) `/v2/models/{model}/generate_stream`.
    TrtLlm,
    /// llama.cpp server's native `/completion`.
    LlamaCpp,
    /// DeepSpeed-MII's REST endpoint (one JSON answer, no streaming).
    Mii,
}

impl Api {
    /// Whether this API streams its answers.
    pub fn streams(self) -> bool {
        !matches!(self, Api::Mii) && !self.pooling()
    }

    /// Whether this is a pooling API (embeddings, pooling, rerank): one JSON answer,
    /// no output tokens, measured by E2EL and input throughput as vLLM's
    /// `POOLING_BACKENDS`.
    pub fn pooling(self) -> bool {
        matches!(
            self,
            Api::Embeddings | Api::EmbeddingsChat | Api::Infinity | Api::Pooling | Api::Rerank
        )
    }

    /// How many input sequences this API receives from `prompt`: a batch's size, a
    /// rerank request's documents, otherwise 1 (vLLM's `num_input_sequences`).
    pub fn input_sequences(self, prompt: &crate::dataset::Prompt) -> u32 {
        match prompt {
            crate::dataset::Prompt::Texts(t) if self == Api::Rerank => {
                t.len().saturating_sub(1).max(1) as u32
            }
            crate::dataset::Prompt::Texts(t) => t.len().max(1) as u32,
            _ => 1,
        }
    }

    /// The API's short name, as Lua scripts see it (`target.api`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Completions => "completions",
            Api::Chat => "chat",
            Api::Embeddings => "embeddings",
            Api::EmbeddingsChat => "embeddings-chat",
            Api::Infinity => "infinity",
            Api::Pooling => "pooling",
            Api::Rerank => "rerank",
            Api::Responses => "responses",
            Api::Audio => "audio",
            Api::Sglang => "sglang",
            Api::Tgi => "tgi",
            Api::TrtLlm => "tensorrt-llm",
            Api::LlamaCpp => "llama.cpp",
            Api::Mii => "deepspeed-mii",
        }
    }

    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Api::Completions => "OpenAI completions (choices[].text)",
            Api::Chat => "OpenAI chat completions (choices[].delta)",
            Api::Embeddings => "OpenAI embeddings (data[].embedding)",
            Api::EmbeddingsChat => "embeddings of chat messages (data[].embedding)",
            Api::Infinity => "Infinity embeddings (data[].embedding)",
            Api::Pooling => "vLLM pooling (data[].data)",
            Api::Rerank => "a rerank answer (results[].relevance_score)",
            Api::Responses => {
                "OpenAI Responses events (response.output_text.delta, response.completed)"
            }
            Api::Audio => {
                "a transcription stream (choices[].delta.content or transcript.text.delta events)"
            }
            Api::Sglang => "SGLang's native /generate (text + meta_info)",
            Api::Tgi => "TGI's /generate_stream (token, generated_text)",
            Api::TrtLlm => "TensorRT-LLM's generate_stream (text_output)",
            Api::LlamaCpp => "llama.cpp's /completion (content, stop)",
            Api::Mii => "DeepSpeed-MII (text or choices)",
        }
    }

    /// The signal that marks a complete streamed answer in this protocol.
    pub fn finish_signal(self) -> &'static str {
        match self {
            Api::Completions | Api::Chat => "a choice's finish_reason",
            Api::Sglang => "meta_info.finish_reason or data: [DONE]",
            Api::Tgi => "a final event with generated_text",
            Api::LlamaCpp => "an event with \"stop\": true",
            Api::TrtLlm => "none (the stream's end)",
            Api::Responses => "a response.completed or response.incomplete event",
            Api::Audio => "a choice's finish_reason or a transcript.text.done event",
            Api::Embeddings
            | Api::EmbeddingsChat
            | Api::Infinity
            | Api::Pooling
            | Api::Rerank
            | Api::Mii => "a complete JSON answer",
        }
    }
}

/// A backend: the name the user chose (as vLLM's `--backend`) and its API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The name as given (`openai`, `vllm`, `openai-chat`).
    pub name: String,
    /// The API it speaks.
    pub api: Api,
}

/// Backend names (vLLM's `--backend` names, plus SGLang's) and their APIs.
pub const BACKENDS: &[(&str, Api)] = &[
    ("openai", Api::Completions),
    ("vllm", Api::Completions),
    ("lmdeploy", Api::Completions),
    ("scalellm", Api::Completions),
    ("sglang-oai", Api::Completions),
    ("openai-chat", Api::Chat),
    ("vllm-chat", Api::Chat),
    ("lmdeploy-chat", Api::Chat),
    ("sglang-oai-chat", Api::Chat),
    ("openai-embeddings", Api::Embeddings),
    ("openai-embeddings-chat", Api::EmbeddingsChat),
    ("openai-embeddings-clip", Api::EmbeddingsChat),
    ("openai-embeddings-vlm2vec", Api::EmbeddingsChat),
    ("infinity-embeddings", Api::Infinity),
    ("vllm-pooling", Api::Pooling),
    ("vllm-rerank", Api::Rerank),
    ("openai-responses", Api::Responses),
    ("openai-audio", Api::Audio),
    ("sglang", Api::Sglang),
    ("tgi", Api::Tgi),
    ("tensorrt-llm", Api::TrtLlm),
    ("llama.cpp", Api::LlamaCpp),
    ("deepspeed-mii", Api::Mii),
];

impl Backend {
    /// Looks a backend up by name; an unknown name lists the valid ones.
    pub fn parse(name: &str) -> Result<Backend, String> {
        BACKENDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, api)| Backend {
                name: n.to_string(),
                api: *api,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = BACKENDS.iter().map(|b| b.0).collect();
                format!(
                    "unknown backend '{name}'; valid backends: {}",
                    names.join(", ")
                )
            })
    }

    /// The endpoint path used when none is given (`{model}` is replaced by the
    /// model name; TensorRT-LLM's Triton model is usually `ensemble`).
    pub fn default_endpoint(&self) -> &'static str {
        match self.api {
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
            Api::Embeddings | Api::EmbeddingsChat => "/v1/embeddings",
            Api::Infinity => "/embeddings",
            Api::Pooling => "/pooling",
            Api::Rerank => "/rerank",
            Api::Responses => "/v1/responses",
            Api::Audio => "/v1/audio/transcriptions",
            Api::Sglang => "/generate",
            Api::Tgi => "/generate_stream",
            Api::TrtLlm => "/v2/models/ensemble/generate_stream",
            Api::LlamaCpp => "/completion",
            Api::Mii => "/mii/{model}",
        }
    }
}

/// A target for `backend` at a placeholder address, sending `model` (unit tests
/// of request bodies and decoders).
#[cfg(test)]
pub fn test_target(backend: &str, model: &str) -> Target {
    Target::new(
        Backend::parse(backend).unwrap(),
        BaseUrl::parse("http://h:1").unwrap(),
        model,
    )
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS (rustls, webpki roots).
    Https,
}

/// A parsed base URL: scheme, host, port and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path prefix without a trailing slash (often empty).
    pub prefix: String,
}

impl BaseUrl {
    /// Parses `http(s)://host[:port][/prefix]`.
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let bad = |why: &str| {
            format!(
                "bad base URL '{url}': {why}; write it like http://127.0.0.1:8000 or https://api.example.com/v1-proxy"
            )
        };
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(bad("it must start with http:// or https://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("the host is missing"));
        }
        let default_port = if scheme == Scheme::Https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
            let host = &v6[..end];
            let port = match v6[end + 1..].strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
                None => default_port,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| bad("the port is not a number"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        Ok(BaseUrl {
            scheme,
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let default = matches!(
            (self.scheme, self.port),
            (Scheme::Http, 80) | (Scheme::Https, 443)
        );
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL as text (without a trailing slash).
    pub fn as_string(&self) -> String {
        let s = if self.scheme == Scheme::Https {
            "https"
        } else {
            "http"
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{s}://{host}:{}{}", self.port, self.prefix)
    }

    /// The request path for `endpoint` under this base URL.
    pub fn path(&self, endpoint: &str) -> String {
        let ep = if endpoint.starts_with('/') {
            endpoint.to_string()
        } else {
            format!("/{endpoint}")
        };
        format!("{}{}", self.prefix, ep)
    }
}

/// Everything needed to send requests to one server.
#[derive(Debug, Clone)]
pub struct Target {
    /// Backend (API) to speak.
    pub backend: Backend,
    /// Where the server is.
    pub base_url: BaseUrl,
    /// Request path, e.g. `/v1/completions` (`{model}` stands for the model name).
    pub endpoint: String,
    /// The model id (result files' `model_id`; also the payload `model` unless
    /// `served_model_name` is set).
    pub model: String,
    /// The model name sent in the payload, if different from `model`.
    pub served_model_name: Option<String>,
    /// Bearer token; never written to result files.
    pub api_key: Option<String>,
    /// Extra HTTP headers.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
    /// Stream the response (SSE) or ask for one JSON body.
    pub stream: bool,
    /// Ask vLLM for usage in every chunk (`stream_options.continuous_usage_stats`).
    pub continuous_usage: bool,
    /// POST `/start_profile` and `/stop_profile` around the measured part (vLLM's `--profile`).
    pub profile: bool,
    /// With `profile`: start the profiler only once the server's `/metrics` shows
    /// this many requests running, and stop it `profile_duration` later (vLLM's
    /// Rust client's `--profile-batch-threshold`).
    pub profile_batch_threshold: Option<u32>,
    /// How long a threshold-started profile captures (`--profile-duration`, 5 s).
    pub profile_duration: Duration,
    /// POST `/reset_prefix_cache` (vLLM) or `/flush_cache` (SGLang) before the
    /// measured part, so no earlier run's prompts are served from the cache.
    pub reset_prefix_cache: bool,
    /// Fields merged into every request body (sampling parameters, `ignore_eos`, ...).
    pub body: Map<String, Value>,
    /// Prefix of the `x-request-id` header, followed by the request index. Empty:
    /// each request gets a random UUID (servers such as llama-cpp-python's reject
    /// any other request id).
    pub request_id_prefix: String,
    /// How the server's TLS certificate is checked (https only).
    pub tls: TlsOptions,
}

/// How an https server's certificate is checked: the system's trust store (with
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`, as curl and OpenSSL read them), the compiled-in
/// Mozilla roots, and `ca_cert`; or not at all with `insecure` (vLLM's `--insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Accept any certificate (prints a warning).
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust (`--ca-cert`).
    pub ca_cert: Option<std::path::PathBuf>,
}

impl Target {
    /// A target with defaults: streaming, the backend's default endpoint, no extras.
    pub fn new(backend: Backend, base_url: BaseUrl, model: impl Into<String>) -> Target {
        let model = model.into();
        let stream = backend.api.streams();
        Target {
            endpoint: backend.default_endpoint().to_string(),
            backend,
            base_url,
            model,
            served_model_name: None,
            api_key: None,
            headers: Vec::new(),
            timeout: None,
            stream,
            continuous_usage: false,
            profile: false,
            profile_batch_threshold: None,
            profile_duration: Duration::from_secs(5),
            reset_prefix_cache: false,
            body: Map::new(),
            request_id_prefix: String::new(),
            tls: TlsOptions::default(),
        }
    }

    /// The model name sent in the payload.
    pub fn payload_model(&self) -> &str {
        self.served_model_name.as_deref().unwrap_or(&self.model)
    }

    /// Headers for side requests (ready check, metrics, profiler): the extra
    /// headers and the API key.
    pub fn plain_headers(&self) -> Vec<(String, String)> {
        let mut h = self.headers.clone();
        if let Some(k) = &self.api_key {
            h.push(("authorization".into(), format!("Bearer {k}")));
        }
        h
    }

    /// The request path: the endpoint under the base URL, with `{model}` replaced
    /// by the payload model (known only after the ready check when not given).
    pub fn request_path(&self) -> String {
        self.base_url
            .path(&self.endpoint.replace("{model}", self.payload_model()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let u = BaseUrl::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("127.0.0.1", 8000, "")
        );
        assert_eq!(u.path("/v1/completions"), "/v1/completions");
        let u = BaseUrl::parse("https://api.example.com/proxy/").unwrap();
        assert_eq!((u.port, u.prefix.as_str()), (443, "/proxy"));
        assert_eq!(u.host_header(), "api.example.com");
        assert_eq!(u.path("v1/chat/completions"), "/proxy/v1/chat/completions");
        let u = BaseUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.host_header(), "[::1]:9000");
        assert!(
            BaseUrl::parse("localhost:8000")
                .unwrap_err()
                .contains("http://")
        );
        assert!(BaseUrl::parse("http://h:abc").unwrap_err().contains("port"));
    }

    #[test]
    fn unknown_backend_lists_valid_ones() {
        let e = Backend::parse("tgii").unwrap_err();
        assert!(e.contains("openai-chat"), "{e}");
        assert_eq!(Backend::parse("vllm").unwrap().api, Api::Completions);
    }
}
