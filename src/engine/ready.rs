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

/// Waits for the server; the error names the URL, the last failure and the fix.
pub async fn wait_ready(
    client: &HttpClient,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<ReadyInfo, String> {
    let start = Instant::now();
    let url = client.base().as_string();
    let mut last: String;
    let mut announced = false;
    loop {
        match client.get("/v1/models", headers).await {
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
                    match client.get(path, headers).await {
                        Ok((200, _)) => return Ok(ReadyInfo::default()),
                        Ok((s, _)) => answers.push(format!("{path} answered HTTP {s}")),
                        Err(e) => answers.push(e.message),
                    }
                }
                last = format!("/v1/models answered 404, {}", answers.join(", "));
            }
            Ok((s, _)) => last = format!("/v1/models answered HTTP {s}"),
            Err(e) => last = e.message,
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "the server at {url} is not ready after {:.0} s (last error: {last}).\n\
                 Is it running, and are --base-url / --host / --port right? \
                 (--ready-check-timeout-sec sets how long to wait)",
                timeout.as_secs_f64()
            ));
        }
        if !announced && start.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "waiting for the server at {url} (up to {:.0} s): {last}",
                timeout.as_secs_f64()
            );
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
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
