//! Asking the server how long prompts really are (`--verify-prompt-lengths`):
//! its `/tokenize` endpoint in the three forms servers speak — vLLM's and SGLang's
//! (`{model, prompt, add_special_tokens}` → `{count, tokens, max_model_len}`),
//! llama.cpp's (`{content, add_special}` → `{tokens}`) and TGI's (`{inputs}` → a
//! list of tokens) — and [`verify`], which compares every text prompt's length by
//! moonbench's tokenizer with the server's count, without special tokens on either
//! side, and reports the differences and the prompts longer than the model allows.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::http::HttpClient;
use super::{Api, Target};
use crate::dataset::Request;

/// A form of the `/tokenize` request and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// vLLM's and SGLang's.
    OpenAi,
    /// llama.cpp's llama-server.
    LlamaCpp,
    /// Hugging Face TGI's.
    Tgi,
}

impl Dialect {
    /// The name written in results.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAi => "vllm/sglang",
            Dialect::LlamaCpp => "llama.cpp",
            Dialect::Tgi => "tgi",
        }
    }

    /// The request body for `text` (special tokens not added).
    pub fn body(self, model: &str, text: &str) -> Vec<u8> {
        let v = match self {
            Dialect::OpenAi => json!({"model": model, "prompt": text, "add_special_tokens": false}),
            Dialect::LlamaCpp => json!({"content": text, "add_special": false}),
            Dialect::Tgi => json!({"inputs": text, "add_special_tokens": false}),
        };
        v.to_string().into_bytes()
    }

    /// The token count (and the model's length limit, when told) of an answer.
    pub fn parse(self, body: &[u8]) -> Result<(u32, Option<u32>), String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
        let n = match self {
            // vLLM and SGLang always send `count`; a `tokens` list alone is another
            // server that ignored the fields it does not know (llama-server answers
            // `{"tokens": []}` to this form).
            Dialect::OpenAi => v.get("count").and_then(Value::as_u64),
            Dialect::LlamaCpp => v
                .get("tokens")
                .and_then(Value::as_array)
                .map(|a| a.len() as u64),
            Dialect::Tgi => v.as_array().map(|a| a.len() as u64),
        };
        let n = n.ok_or_else(|| format!("no token count in {}", short(body)))?;
        let max = v
            .get("max_model_len")
            .and_then(Value::as_u64)
            .map(|m| m as u32);
        Ok((n as u32, max))
    }

    /// The forms to try, the backend's own first.
    fn order(api: Api) -> [Dialect; 3] {
        match api {
            Api::LlamaCpp => [Dialect::LlamaCpp, Dialect::OpenAi, Dialect::Tgi],
            Api::Tgi => [Dialect::Tgi, Dialect::OpenAi, Dialect::LlamaCpp],
            _ => [Dialect::OpenAi, Dialect::LlamaCpp, Dialect::Tgi],
        }
    }
}

fn short(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

/// One prompt whose length the server counts differently.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Position in the request list (0-based).
    pub index: usize,
    /// moonbench's count.
    pub ours: u32,
    /// The server's count.
    pub server: u32,
}

/// What `--verify-prompt-lengths` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LengthCheck {
    /// The URL asked.
    pub url: String,
    /// The form the server answered to.
    pub dialect: &'static str,
    /// Prompts the server counted.
    pub checked: u64,
    /// Of those, prompts it counts exactly as moonbench does.
    pub equal: u64,
    /// Prompts not checked: chat message lists (the server adds its template),
    /// token ids (their length is exact), batches.
    pub skipped: u64,
    /// How many prompts differ by how much (server − moonbench).
    pub differences: BTreeMap<i64, u64>,
    /// The first mismatches (at most 10).
    pub examples: Vec<Mismatch>,
    /// The model's length limit, when the server told it.
    pub max_model_len: Option<u32>,
    /// Prompts whose server length plus `max_tokens` exceeds `max_model_len`.
    pub over_max_model_len: u64,
}

impl LengthCheck {
    /// The check as result-file JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url,
            "dialect": self.dialect,
            "checked": self.checked,
            "equal": self.equal,
            "skipped": self.skipped,
            "differences": self.differences.iter().map(|(d, n)| (d.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "examples": self.examples.iter().map(|m| json!({"index": m.index, "ours": m.ours, "server": m.server})).collect::<Vec<_>>(),
            "max_model_len": self.max_model_len,
            "over_max_model_len": self.over_max_model_len,
        })
    }
}

/// One server's `/tokenize`, asked with the target's headers and a time bound.
struct Asker<'a> {
    client: &'a HttpClient,
    headers: &'a [(String, String)],
    model: &'a str,
    timeout: Duration,
}

impl Asker<'_> {
    async fn count(&self, d: Dialect, text: &str) -> Result<(u32, Option<u32>), String> {
        let body = d.body(self.model, text);
        match tokio::time::timeout(
            self.timeout,
            self.client.post_json("/tokenize", self.headers, body),
        )
        .await
        {
            Err(_) => Err(format!(
                "no answer within {:.0} s",
                self.timeout.as_secs_f64()
            )),
            Ok(Err(e)) => Err(e.message),
            Ok(Ok((200, body))) => d.parse(&body),
            Ok(Ok((status, body))) => Err(format!("HTTP {status}: {}", short(&body))),
        }
    }
}

/// How many `/tokenize` requests are in flight at once.
const PARALLEL: usize = 4;

/// Asks `target`'s server for the length of each text prompt in `requests` (at
/// most `limit` of them). Fails, naming the URL and what came back, when the
/// server answers none of the forms.
pub async fn verify(
    client: &HttpClient,
    target: &Target,
    requests: &[Request],
    limit: Option<usize>,
) -> Result<LengthCheck, String> {
    let url = format!(
        "{}/tokenize",
        target.base_url.as_string().trim_end_matches('/')
    );
    let headers = target.plain_headers();
    let model = target.payload_model().to_string();
    let timeout = target
        .timeout
        .unwrap_or(Duration::from_secs(30))
        .min(Duration::from_secs(60));
    let mut check = LengthCheck {
        url: url.clone(),
        ..Default::default()
    };
    let mut texts = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        match r.prompt.text() {
            Some(t) if texts.len() < limit.unwrap_or(usize::MAX) => {
                texts.push((i, t.into_owned(), r.prompt_tokens, r.max_tokens))
            }
            Some(_) => {}
            None => check.skipped += 1,
        }
    }
    let ask = Asker {
        client,
        headers: &headers,
        model: &model,
        timeout,
    };
    let Some(first) = texts.first() else {
        return Ok(check);
    };
    // The form the server speaks, from the first prompt.
    let mut tried = Vec::new();
    let mut dialect = None;
    for d in Dialect::order(target.backend.api) {
        match ask.count(d, &first.1).await {
            // Nothing counted in a text that has something: the server read another field.
            Ok((0, _)) if !first.1.trim().is_empty() => {
                tried.push(format!("{} form: 0 tokens counted", d.name()))
            }
            Ok(_) => {
                dialect = Some(d);
                break;
            }
            Err(e) => tried.push(format!("{} form: {e}", d.name())),
        }
    }
    let Some(d) = dialect else {
        // One answer to all three forms is said once.
        let reasons: Vec<&str> = tried
            .iter()
            .map(|t| t.split_once(" form: ").map_or(t.as_str(), |x| x.1))
            .collect();
        if reasons.windows(2).all(|w| w[0] == w[1]) {
            tried = vec![format!("every form: {}", reasons[0])];
        }
        return Err(format!(
            "--verify-prompt-lengths: {url} counted no prompt ({}). vLLM, SGLang, llama.cpp and TGI \
             have a /tokenize endpoint; drop the flag for servers without one",
            tried.join("; ")
        ));
    };
    check.dialect = d.name();
    // A few at a time, in order (futures pushed in a loop: no closure to name
    // their lifetimes, which a spawned task would need to be general over).
    for chunk in texts.chunks(PARALLEL) {
        let mut asked = Vec::with_capacity(chunk.len());
        for item in chunk {
            asked.push(ask.count(d, &item.1));
        }
        let answers = futures_util::future::join_all(asked).await;
        for ((index, _, ours, max_tokens), answer) in chunk.iter().zip(answers) {
            let (index, ours) = (*index, *ours);
            let (server, max_len) = answer
                .map_err(|e| format!("--verify-prompt-lengths: {url}, prompt {index}: {e}"))?;
            check.checked += 1;
            if server == ours {
                check.equal += 1;
            } else {
                *check
                    .differences
                    .entry(server as i64 - ours as i64)
                    .or_default() += 1;
                if check.examples.len() < 10 {
                    check.examples.push(Mismatch {
                        index,
                        ours,
                        server,
                    });
                }
            }
            if let Some(m) = max_len {
                check.max_model_len = Some(m);
                if server as u64 + max_tokens.unwrap_or(0) as u64 > m as u64 {
                    check.over_max_model_len += 1;
                }
            }
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers as the servers document them (vLLM's TokenizeResponse, SGLang's
    /// native API page, llama.cpp's server README, TGI's /tokenize).
    #[test]
    fn parses_each_servers_answer() {
        let vllm = br#"{"count":3,"max_model_len":4096,"tokens":[1,2,3],"token_strs":null}"#;
        assert_eq!(Dialect::OpenAi.parse(vllm).unwrap(), (3, Some(4096)));
        assert!(Dialect::OpenAi.parse(br#"{"tokens":[]}"#).is_err());
        let llama = br#"{"tokens":[9906,11,1917]}"#;
        assert_eq!(Dialect::LlamaCpp.parse(llama).unwrap(), (3, None));
        let tgi =
            br#"[{"id":1,"text":"a","start":0,"stop":1},{"id":2,"text":"b","start":1,"stop":2}]"#;
        assert_eq!(Dialect::Tgi.parse(tgi).unwrap(), (2, None));
        let e = Dialect::LlamaCpp.parse(br#"{"error":"x"}"#).unwrap_err();
        assert!(e.contains("no token count"), "{e}");
        let b: Value = serde_json::from_slice(&Dialect::OpenAi.body("m", "hi")).unwrap();
        assert_eq!(
            b,
            json!({"model": "m", "prompt": "hi", "add_special_tokens": false})
        );
        let b: Value = serde_json::from_slice(&Dialect::LlamaCpp.body("m", "hi")).unwrap();
        assert_eq!(b, json!({"content": "hi", "add_special": false}));
    }
}
