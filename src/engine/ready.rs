//! The ready check: wait until the server answers before any load is sent.
//! Polls `GET /v1/models` (falling back to `GET /health` and Triton's
//! `GET /v2/health/ready` when it is missing) until
//! it answers 200 or the timeout passes.

use std::time::{Duration, Instant};

use crate::backend::http::HttpClient;

/// What the server said when it became ready.
#[derive(Debug, Clone, Default)]
pub struct ReadyInfo {
    /// Model ids listed by `/v1/models` (empty if it was not available).
    pub models: Vec<String>,
}

/// One GET bounded by what is left of the ready timeout (at most 10 s a try).
async fn get(
    client: &HttpClient,
    path: &str,
    headers: &[(String, String)],
    deadline: Instant,
) -> Result<(u16, bytes::Bytes), crate::metrics::RequestError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(10))
        .max(Duration::from_millis(50));
    match tokio::time::timeout(left, client.get(path, headers)).await {
        Ok(r) => r,
        Err(_) => Err(crate::metrics::RequestError::new(
            crate::metrics::ErrorKind::Timeout,
            format!(
                "GET {path} got no answer within {:.1} s (the server accepted the connection but did not reply)",
                left.as_secs_f64()
            ),
        )),
    }
}

/// Waits for the server, never longer than `timeout` whatever it does; the error
/// names the URL, the last failure and the fix. A certificate error ends the wait
/// at once: it does not go away by waiting.
pub async fn wait_ready(
    client: &HttpClient,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<ReadyInfo, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let url = client.base().as_string();
    let mut last: String;
    let mut announced = false;
    loop {
        match get(client, "/v1/models", headers, deadline).await {
            Ok((200, body)) => {
                return Ok(ReadyInfo {
                    models: parse_models(&body),
                });
            }
            Ok((401 | 403, _)) => {
                return Err(format!(
                    "the server at {url} refused the API key (HTTP 401/403); pass --api-key or set OPENAI_API_KEY"
                ));
            }
            Ok((404 | 405, _)) => {
                // TGI and llama.cpp answer /health; Triton (TensorRT-LLM) /v2/health/ready.
                let mut answers = Vec::new();
                for path in ["/health", "/v2/health/ready"] {
                    match get(client, path, headers, deadline).await {
                        Ok((200, _)) => return Ok(ReadyInfo::default()),
                        Ok((s, _)) => answers.push(format!("{path} answered HTTP {s}")),
                        Err(e) => answers.push(e.message),
                    }
                }
                last = format!("/v1/models answered 404, {}", answers.join(", "));
            }
            Ok((s, _)) => last = format!("/v1/models answered HTTP {s}"),
            Err(e) if e.kind == crate::metrics::ErrorKind::Tls => return Err(e.message),
            Err(e) => last = e.message,
        }
        if start.elapsed() >= timeout {
            use crate::i18n::{tr, trf};
            let hint = if last.contains("got no answer") {
                tr(
                    "It accepts connections but does not answer: is it still loading the model, overloaded, \
                 or not an HTTP server (https:// for a TLS port)?",
                )
            } else {
                tr("Is it running, and are --base-url / --host / --port right?")
            };
            let secs = format!("{:.0}", timeout.as_secs_f64());
            return Err(format!(
                "{}\n{}",
                trf(
                    "the server at {} is not ready after {} s (last error: {}).",
                    &[&url, &secs, &last]
                ),
                trf(
                    "{} (--ready-check-timeout-sec sets how long to wait)",
                    &[&hint]
                )
            ));
        }
        if !announced && start.elapsed() > Duration::from_secs(2) {
            let secs = format!("{:.0}", timeout.as_secs_f64());
            let last = crate::i18n::is_zh()
                .then(|| crate::i18n::zh_of_message(&last))
                .flatten()
                .unwrap_or_else(|| last.clone());
            eprintln!(
                "{}",
                crate::i18n::say(
                    "waiting for the server at {} (up to {} s): {}",
                    &[&url, &secs, &last]
                )
            );
            announced = true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_millis(500).min(left)).await;
    }
}

fn parse_models(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("data").and_then(|d| d.as_array()).map(|a| {
                a.iter()
                    .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}
