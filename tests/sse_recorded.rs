//! The SSE decoder and the OpenAI chunk decoder over recorded streams, split at every
//! byte offset (and at every pair of offsets): the decoded response never changes.

use moonbench::backend::Api;
use moonbench::backend::exec::Accum;
use moonbench::backend::openai::on_event;
use moonbench::backend::sse::SseDecoder;

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

fn summary(a: &Accum) -> (String, usize, Vec<u32>, Option<u32>, Option<u32>, bool) {
    (
        a.text.clone(),
        a.chunk_ns.len(),
        a.chunk_tokens.clone(),
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
            vec![0, 0],
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
