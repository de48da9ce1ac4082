//! The SSE decoder and every backend's event decoder over recorded streams, split at
//! every byte offset (and at every pair of offsets): the decoded response never changes.

use moonbench::backend::Api;
use moonbench::backend::exec::Accum;
use moonbench::backend::protocol::on_event;
use moonbench::backend::sse::SseDecoder;
use moonbench::tokenizer::Tokenizer;

fn decode(bytes: &[u8], api: Api, splits: &[usize]) -> Accum {
    let mut acc = Accum::default();
    let mut d = SseDecoder::new();
    let mut start = 0;
    let mut t = 0u64;
    for &s in splits.iter().chain(std::iter::once(&bytes.len())) {
        t += 1;
        let now = t;
        d.feed(&bytes[start..s], &mut |ev| {
            on_event(api, ev.data, now, &mut acc)
        })
        .unwrap();
        start = s;
    }
    d.finish(&mut |ev| on_event(api, ev.data, t, &mut acc))
        .unwrap();
    acc
}

/// What a decoded stream settles to: text, token-bearing chunks and their counts
/// (by the one rule, `Accum::settle`), usage, and whether it finished.
fn summary(a: &Accum) -> (String, usize, Vec<u32>, Option<u32>, Option<u32>, bool) {
    let s = a.settle(&Tokenizer::words());
    (
        a.text.clone(),
        s.chunk_ns.len(),
        s.chunk_tokens,
        a.usage_prompt,
        a.usage_completion,
        a.done,
    )
}

fn check_every_split(
    path: &str,
    api: Api,
    want: (String, usize, Vec<u32>, Option<u32>, Option<u32>, bool),
) {
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(summary(&decode(&bytes, api, &[])), want, "{path} whole");
    for i in 0..=bytes.len() {
        assert_eq!(
            summary(&decode(&bytes, api, &[i])),
            want,
            "{path} split at {i}"
        );
    }
    for i in (0..=bytes.len()).step_by(7) {
        for j in (i..=bytes.len()).step_by(5) {
            assert_eq!(
                summary(&decode(&bytes, api, &[i, j])),
                want,
                "{path} split at {i},{j}"
            );
        }
    }
    // One byte at a time: every chunk's time is the feed that completed it.
    let splits: Vec<usize> = (1..bytes.len()).collect();
    let a = decode(&bytes, api, &splits);
    assert!(a.chunk_ns.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn recorded_chat_stream_with_continuous_usage() {
    check_every_split(
        "sim_chat_stream.sse",
        Api::Chat,
        (
            " the model stone river light".into(),
            3,
            vec![2, 2, 1],
            Some(1),
            Some(5),
            true,
        ),
    );
}

#[test]
fn recorded_completions_stream() {
    check_every_split(
        "sim_completions_stream.sse",
        Api::Completions,
        (
            " model stone river light".into(),
            2,
            vec![2, 2],
            Some(2),
            Some(4),
            true,
        ),
    );
}

#[test]
fn crlf_comments_and_utf8_split_anywhere() {
    check_every_split(
        "chat_crlf_utf8_stream.sse",
        Api::Chat,
        (
            "你好，the model stone river light".into(),
            3,
            vec![2, 2, 1],
            Some(1),
            Some(5),
            true,
        ),
    );
}

#[test]
fn recorded_sglang_stream_counts_tokens_from_meta_info() {
    check_every_split(
        "sim_sglang_stream.sse",
        Api::Sglang,
        (
            " bench moon the model stone".into(),
            3,
            vec![2, 2, 1],
            Some(2),
            Some(5),
            true,
        ),
    );
}

#[test]
fn recorded_tgi_stream_is_one_token_per_event() {
    check_every_split(
        "sim_tgi_stream.sse",
        Api::Tgi,
        (
            " moon the model stone river".into(),
            5,
            vec![1, 1, 1, 1, 1],
            Some(2),
            Some(5),
            true,
        ),
    );
}

#[test]
fn recorded_trtllm_stream_counts_by_tokenizer() {
    // TensorRT-LLM reports no counts: chunks carry 0 and the tokenizer counts later.
    check_every_split(
        "sim_trtllm_stream.sse",
        Api::TrtLlm,
        (
            " the model stone river light".into(),
            3,
            vec![2, 2, 1],
            None,
            None,
            false,
        ),
    );
}

#[test]
fn recorded_llamacpp_stream_with_token_ids() {
    check_every_split(
        "sim_llamacpp_stream.sse",
        Api::LlamaCpp,
        (
            " model stone river light token".into(),
            3,
            vec![2, 2, 1],
            Some(2),
            Some(5),
            true,
        ),
    );
}

/// llama-server as of December 2024 (no `tokens` ids; a cumulative
/// `tokens_predicted` on every event), as pasted in llama.cpp PR #10720; the paste is
/// cut before the `stop` event, so the stream is incomplete. The held-back stop word
/// ("?\n") is the fourth event: a token with no text.
#[test]
fn real_llama_server_2024_stream_counts_by_tokens_predicted() {
    check_every_split(
        "real/llamacpp_server_2024_native_stream_cut.sse",
        Api::LlamaCpp,
        (
            " the planet Mars".into(),
            4,
            vec![1, 1, 1, 1],
            Some(16),
            Some(4),
            false,
        ),
    );
}

/// TGI 3.1.2's OpenAI-compatible streams, from its own recorded test snapshots
/// (framing per its router; see tests/fixtures/README.md).
#[test]
fn real_tgi_streams() {
    check_real(
        "tgi_chat_stream_usage.sse",
        Api::Chat,
        "**Deep Learning: An Overview**\n=====================================\n\n",
        10,
        Some((40, 10)),
    );
    // Four prompts in one request (moonbench sends one): `"finish_reason": ""` on
    // every chunk but each prompt's last, which carries that prompt's usage (the
    // last one read is that of "def mai": 3 prompt tokens, 10 generated). An empty reason
    // does not finish the answer.
    let path = "tgi_completions_four_prompts_stream.sse";
    check_real(
        path,
        Api::Completions,
        &tgi_four_prompts_text(),
        40,
        Some((3, 10)),
    );
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/real/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let first = bytes.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    assert!(!decode(&bytes[..first], Api::Completions, &[]).done);
}

/// The four answers of TGI's snapshot, interleaved one token at a time as TGI sent
/// them (the decoder reads the first choice of each chunk, whatever its index),
/// read with serde_json line by line, apart from the decoder under test.
fn tgi_four_prompts_text() -> String {
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/real/tgi_completions_four_prompts_stream.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut text = String::new();
    for line in bytes.split(|&b| b == b'\n') {
        if let Some(data) = line.strip_prefix(b"data: ").filter(|d| *d != b"[DONE]") {
            let v: serde_json::Value = serde_json::from_slice(data).unwrap();
            text.push_str(v["choices"][0]["text"].as_str().unwrap());
        }
    }
    text
}

#[test]
fn a_stream_from_another_protocol_names_the_right_backend() {
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/sim_completions_stream.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for api in [Api::Tgi, Api::Sglang, Api::TrtLlm, Api::LlamaCpp, Api::Chat] {
        let mut acc = Accum::default();
        let mut d = SseDecoder::new();
        let err = d
            .feed(&bytes, &mut |ev| on_event(api, ev.data, 1, &mut acc))
            .unwrap_err();
        assert!(
            err.message.contains("use --backend openai")
                && (api == Api::Chat || err.message.contains(api.describe())),
            "{api:?}: {}",
            err.message
        );
    }
}

#[test]
fn recorded_whole_answers_of_mii_and_embeddings() {
    use moonbench::backend::protocol::on_body;
    let read = |p: &str| {
        std::fs::read(format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let mut acc = Accum::default();
    on_body(Api::Mii, &read("sim_mii_answer.json"), 7, &mut acc).unwrap();
    assert_eq!(
        (acc.text.as_str(), acc.chunk_ns.clone()),
        (" the model stone river light", vec![7])
    );
    let mut acc = Accum::default();
    on_body(
        Api::Embeddings,
        &read("sim_embeddings_answer.json"),
        7,
        &mut acc,
    )
    .unwrap();
    assert_eq!(
        (
            acc.usage_prompt,
            acc.settle(&Tokenizer::words()).chunk_tokens
        ),
        (Some(3), vec![0])
    );
    // The embeddings answer given to a chat decoder says what it is.
    let mut acc = Accum::default();
    let e = on_body(Api::Chat, &read("sim_embeddings_answer.json"), 7, &mut acc).unwrap_err();
    assert!(
        e.message.contains("use --backend openai-embeddings"),
        "{}",
        e.message
    );
}

/// vLLM's own documented `/v1/rerank` answer: a rerank decoder takes it, counting
/// `usage.total_tokens` (vLLM's rerank usage has no `prompt_tokens`); the
/// embeddings decoder refuses it and says what it looks like.
#[test]
fn real_vllm_rerank_answer() {
    use moonbench::backend::protocol::on_body;
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/real/vllm_rerank_answer_docs.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut acc = Accum::default();
    on_body(Api::Rerank, &bytes, 9, &mut acc).unwrap();
    assert_eq!(
        (acc.usage_prompt, acc.usage_completion),
        (Some(56), Some(0))
    );
    assert_eq!(acc.settle(&Tokenizer::words()).chunk_tokens, vec![0]);
    let mut acc = Accum::default();
    let e = on_body(Api::Embeddings, &bytes, 9, &mut acc).unwrap_err();
    assert!(
        e.message.contains("use --backend vllm-rerank"),
        "{}",
        e.message
    );
}

/// A stream recorded from a real server (tests/fixtures/real/, provenance in
/// tests/fixtures/README.md): split at every byte, it always decodes to the text,
/// token-bearing chunk count, usage and finish signal read off the file, and a
/// final usage counts as the request's total, never as a chunk of its own.
fn check_real(path: &str, api: Api, text: &str, chunks: usize, usage: Option<(u32, u32)>) {
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/real/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let whole = summary(&decode(&bytes, api, &[]));
    assert_eq!(whole.0, text, "{path}");
    assert_eq!(whole.1, chunks, "{path}: token-bearing chunks");
    assert!(whole.5, "{path}: the finish signal was seen");
    if let Some((p, c)) = usage {
        assert_eq!((whole.3, whole.4), (Some(p), Some(c)), "{path}: usage");
        if c as usize == chunks {
            assert_eq!(whole.2, vec![1; chunks], "{path}: one token per chunk");
        }
    } else {
        assert_eq!(whole.4, None, "{path}: no usage");
    }
    for i in 0..=bytes.len() {
        assert_eq!(
            summary(&decode(&bytes, api, &[i])),
            whole,
            "{path} split at {i}"
        );
    }
}

#[test]
fn real_llama_server_streams() {
    // usage sits in the last choice chunk (empty text, finish_reason set).
    check_real(
        "llamacpp_server_completions_stream.sse",
        Api::Completions,
        " a celestial body that orbits the Earth,",
        8,
        Some((3, 8)),
    );
    check_real(
        "llamacpp_server_chat_stream.sse",
        Api::Chat,
        "I'm glad you're here",
        6,
        Some((32, 6)),
    );
    check_real(
        "llamacpp_server_native_stream.sse",
        Api::LlamaCpp,
        " a celestial body that orbits",
        5,
        Some((3, 5)),
    );
    // The Responses API: typed events, usage on response.completed.
    check_real(
        "llamacpp_server_responses_stream.sse",
        Api::Responses,
        "I'm glad you're here",
        6,
        Some((32, 6)),
    );
}

#[test]
fn real_llama_cpp_python_and_vllm_streams() {
    check_real(
        "llamacpp_python_completions_stream.sse",
        Api::Completions,
        " a celestial body that orbits the",
        6,
        None,
    );
    check_real(
        "llamacpp_python_chat_stream.sse",
        Api::Chat,
        "\u{1f31f}Hello,",
        3,
        None,
    );
    check_real(
        "vllm_completions_stream_qwen3.sse",
        Api::Completions,
        " city in the state of California,",
        7,
        None,
    );
}

/// The server's own timing on llama-server's last chunk is kept for the record.
#[test]
fn real_llama_server_timings_are_kept() {
    for (path, api) in [
        ("llamacpp_server_completions_stream.sse", Api::Completions),
        ("llamacpp_server_chat_stream.sse", Api::Chat),
        ("llamacpp_server_native_stream.sse", Api::LlamaCpp),
        ("llamacpp_server_responses_stream.sse", Api::Responses),
    ] {
        let bytes = std::fs::read(format!(
            "{}/tests/fixtures/real/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let acc = decode(&bytes, api, &[]);
        let t = acc.server_timing.expect(path);
        assert!(
            t.prompt_ms.unwrap() > 0.0 && t.predicted_n.unwrap() > 0,
            "{path}"
        );
    }
}

/// Transcription streams as vLLM and OpenAI's format send them
/// (tests/fixtures/audio/PROVENANCE.md), split at every byte: vLLM's chat-like
/// `transcription.chunk` events (the opening empty delta carries only usage), and
/// OpenAI's `transcript.text.delta` / `transcript.text.done` events with usage.
#[test]
fn recorded_transcription_streams() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audio/");
    let read = |f: &str| std::fs::read_to_string(format!("{dir}{f}")).unwrap();
    // The issue elides `created`; 0 stands in for it (the decoder never reads it).
    let vllm = format!(
        "{}{}data: [DONE]\n\n",
        read("vllm_pr13301_first_chunk.sse"),
        read("vllm_issue49116_chunk.sse").replace("\"created\":...,", "\"created\":0,")
    );
    let openai = read("vllm_pr49119_openai_events.sse");
    for (bytes, want) in [
        (vllm.as_bytes(), (" My".to_string(), 1, Some(2542), false)),
        (openai.as_bytes(), (" My".to_string(), 1, Some(9004), true)),
    ] {
        let whole = summary(&decode(bytes, Api::Audio, &[]));
        assert_eq!(
            (whole.0.clone(), whole.1, whole.3, whole.5),
            want,
            "{whole:?}"
        );
        for i in 0..=bytes.len() {
            assert_eq!(
                summary(&decode(bytes, Api::Audio, &[i])),
                whole,
                "split at {i}"
            );
        }
    }
    let done = summary(&decode(openai.as_bytes(), Api::Audio, &[]));
    assert_eq!(done.4, Some(143), "transcript.text.done's output_tokens");
}
