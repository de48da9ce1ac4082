//! Tokenizers by model id from the Hugging Face Hub, as vLLM finds them: a model
//! missing from the local cache has its `tokenizer.json` (and, when the repository
//! has them, `tokenizer_config.json` and `chat_template.jinja`) downloaded into the
//! standard cache layout with the `hf-hub` crate. `HF_ENDPOINT` chooses the Hub (a
//! mirror, or a stand-in in tests), `HF_TOKEN` authorizes gated models,
//! `HF_HUB_OFFLINE=1` forbids the network, `HF_HUB_CACHE`/`HF_HOME` choose the cache.
//! Datasets (`--dataset-name hf`) are fetched the same way ([`fetch_dataset`]).

use std::path::PathBuf;
use std::time::Duration;

/// The whole download may take at most this long (`MOONBENCH_HUB_TIMEOUT` seconds
/// changes it): every network step has a bound.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Whether `HF_HUB_OFFLINE` forbids the network (as huggingface_hub reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The Hub's address (`HF_ENDPOINT`, default https://huggingface.co).
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

/// Downloads model `id`'s tokenizer files at `revision` (a branch, tag or commit)
/// into `cache` (a `hub` cache directory) and returns the path of its
/// `tokenizer.json`.
pub fn fetch(id: &str, revision: &str, cache: PathBuf) -> Result<PathBuf, String> {
    let url = format!(
        "{}/{id}/resolve/{}/tokenizer.json",
        endpoint(),
        revision.replace('/', "%2F")
    );
    let repo = hf_hub::Repo::with_revision(
        id.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    );
    bounded(&url, cache, move |api| {
        let repo = api.repo(repo);
        let path = repo.get("tokenizer.json").map_err(|e| e.to_string())?;
        // The chat template lives beside it in one of these, when the model has one.
        for optional in ["tokenizer_config.json", "chat_template.jinja"] {
            let _ = repo.get(optional);
        }
        Ok(path)
    })
}

/// Downloads the files of dataset `id` at `revision` that `choose` picks from the
/// repository's file list, into `cache`; returns their local paths.
pub fn fetch_dataset(
    id: &str,
    revision: &str,
    cache: PathBuf,
    choose: impl FnOnce(&[String]) -> Result<Vec<String>, String> + Send + 'static,
) -> Result<Vec<PathBuf>, String> {
    let url = format!(
        "{}/api/datasets/{id}/revision/{}",
        endpoint(),
        revision.replace('/', "%2F")
    );
    let repo = hf_hub::Repo::with_revision(
        id.to_string(),
        hf_hub::RepoType::Dataset,
        revision.to_string(),
    );
    bounded(&url, cache, move |api| {
        let repo = api.repo(repo);
        let info = repo.info().map_err(|e| e.to_string())?;
        let names: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
        let wanted = choose(&names)?;
        wanted
            .iter()
            .map(|f| repo.get(f).map_err(|e| format!("{f}: {e}")))
            .collect()
    })
}

/// Runs `work` with a Hub client (endpoint, token, cache) on its own thread and
/// waits at most the download limit: ureq has no overall deadline. `url` names
/// what is fetched in errors.
fn bounded<T: Send + 'static>(
    url: &str,
    cache: PathBuf,
    work: impl FnOnce(hf_hub::api::sync::Api) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    if offline() {
        return Err("HF_HUB_OFFLINE is set, so nothing is downloaded".into());
    }
    let endpoint = endpoint();
    let token = std::env::var("HF_TOKEN")
        .ok()
        .or_else(|| std::env::var("HUGGING_FACE_HUB_TOKEN").ok())
        .filter(|t| !t.trim().is_empty());
    let limit = std::env::var("MOONBENCH_HUB_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(TIMEOUT, Duration::from_secs_f64);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = || -> Result<T, String> {
            let mut b = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache))
                .with_endpoint(endpoint)
                .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_retries(1);
            if token.is_some() {
                b = b.with_token(token);
            }
            work(b.build().map_err(|e| e.to_string())?)
        };
        let _ = tx.send(run());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(format!("downloading {url} failed: {e}")),
        Err(_) => Err(format!(
            "downloading {url} took more than {} s (MOONBENCH_HUB_TIMEOUT changes the limit)",
            limit.as_secs_f64()
        )),
    }
}
