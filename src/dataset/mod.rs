//! Prompt sources. A dataset produces [`Request`]s; a [`RequestSet`] is a shared,
//! immutable list of them that Lua indexes like an array without copying it.

pub mod random;

use std::sync::Arc;

use serde_json::{Map, Value};

/// What is sent as the input of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A text prompt (completions), or the single user message (chat).
    Text(String),
    /// A full chat message list (`[{role, content}, ...]`), as JSON.
    Messages(Value),
    /// Token ids, for servers that accept them instead of text.
    TokenIds(Vec<u32>),
}

/// One request to send: the prompt, how many tokens to ask for, and extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The input.
    pub prompt: Prompt,
    /// Prompt length in tokens, by the dataset's tokenizer.
    pub prompt_tokens: u32,
    /// Output tokens to ask for (`max_tokens`); `None` leaves it to the server.
    pub max_tokens: Option<u32>,
    /// Fields merged last into this request's JSON body (sampling parameters, ...).
    pub extra: Option<Map<String, Value>>,
}

impl Request {
    /// A text request.
    pub fn text(prompt: impl Into<String>, prompt_tokens: u32, max_tokens: Option<u32>) -> Self {
        Request {
            prompt: Prompt::Text(prompt.into()),
            prompt_tokens,
            max_tokens,
            extra: None,
        }
    }
}

/// A shared list of requests.
pub type RequestSet = Arc<Vec<Request>>;
