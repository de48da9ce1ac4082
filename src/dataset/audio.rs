//! Audio inputs: an [`Audio`] clip (the file's bytes, its format and length, and
//! the text sent with it), the WAV and FLAC headers its length is read from
//! ([`probe`]), and vLLM's `custom_audio` dataset ([`generate`]): JSONL lines of
//! `{"prompt": "...", "audio": "clip.wav"}`, sent to a transcription API
//! (`openai-audio`) or, as an `input_audio` part, to a chat API.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::{Prompt, Request, at, jsonl_objects, par_map, shuffle_take};
use crate::tokenizer::Tokenizer;

/// One audio clip to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The file's bytes, as read (sent unchanged).
    pub data: Arc<[u8]>,
    /// `"wav"` or `"flac"`.
    pub format: &'static str,
    /// Its length in seconds, from the file's header.
    pub seconds: f64,
    /// The text that goes with it (a chat request's text; the transcription API
    /// gets none, as vLLM sends none).
    pub text: String,
}

impl Audio {
    /// A clip of a WAV or FLAC file's `bytes` (its length from the header) with `text`.
    pub fn from_bytes(bytes: Vec<u8>, text: String) -> Result<Audio, String> {
        let (format, seconds) = probe(&bytes)?;
        Ok(Audio {
            data: bytes.into(),
            format,
            seconds,
            text,
        })
    }

    /// A chat message list with the text (when there is one) and the clip as an
    /// OpenAI `input_audio` part (base64 data and its format), which vLLM's chat
    /// API takes for audio models.
    pub fn chat_messages(&self) -> Value {
        use base64::Engine;
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(serde_json::json!({"type": "text", "text": self.text}));
        }
        content.push(serde_json::json!({"type": "input_audio", "input_audio": {
            "data": base64::engine::general_purpose::STANDARD.encode(&self.data),
            "format": self.format}}));
        serde_json::json!([{"role": "user", "content": content}])
    }

    /// The MIME type of its bytes.
    pub fn mime(&self) -> &'static str {
        match self.format {
            "flac" => "audio/flac",
            _ => "audio/wav",
        }
    }
}

/// The format and length in seconds of a WAV (RIFF `fmt ` + `data`) or FLAC
/// (`STREAMINFO`) file, from its header; anything else is refused, naming what
/// the bytes look like.
pub fn probe(bytes: &[u8]) -> Result<(&'static str, f64), String> {
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        let mut pos = 12;
        let mut byte_rate = None;
        while pos + 8 <= bytes.len() {
            let id = &bytes[pos..pos + 4];
            let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
            let body = pos + 8;
            if id == b"fmt " && body + 12 <= bytes.len() {
                byte_rate = Some(u32::from_le_bytes(
                    bytes[body + 8..body + 12].try_into().unwrap(),
                ));
            }
            if id == b"data" {
                let rate = byte_rate.filter(|r| *r > 0).ok_or(
                    "a WAV file whose \"fmt \" chunk is missing or says 0 bytes per second",
                )?;
                // A streamed WAV may say 0 or 0xFFFFFFFF: then the data runs to the end.
                let len = if size == 0 || body + size > bytes.len() {
                    bytes.len() - body
                } else {
                    size
                };
                return Ok(("wav", len as f64 / rate as f64));
            }
            pos = body + size + (size & 1);
        }
        return Err("a WAV file with no \"data\" chunk".into());
    }
    if bytes.len() >= 26 && &bytes[..4] == b"fLaC" {
        // The first metadata block is STREAMINFO: bytes 10..18 of it hold 20 bits of
        // sample rate, 3 of channels, 5 of bits per sample and 36 of total samples.
        let si = &bytes[8..];
        let rate = (u32::from(si[10]) << 12) | (u32::from(si[11]) << 4) | (u32::from(si[12]) >> 4);
        let total = (u64::from(si[13] & 0x0F) << 32)
            | (u64::from(si[14]) << 24)
            | (u64::from(si[15]) << 16)
            | (u64::from(si[16]) << 8)
            | u64::from(si[17]);
        if rate == 0 || total == 0 {
            return Err(
                "a FLAC file that does not say its length (STREAMINFO has no sample count)".into(),
            );
        }
        return Ok(("flac", total as f64 / f64::from(rate)));
    }
    let looks = if bytes.starts_with(b"ID3") || bytes.starts_with(&[0xFF, 0xFB]) {
        "MP3"
    } else if bytes.starts_with(b"OggS") {
        "Ogg"
    } else {
        "not audio moonbench reads"
    };
    Err(format!(
        "{looks}: moonbench sends WAV and FLAC files (their length is read from the header); \
         convert it first, e.g. `ffmpeg -i clip.mp3 clip.wav`"
    ))
}

/// A mono 16-bit PCM WAV file of `samples` at `rate` Hz.
pub fn pcm16_wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Reads an audio file into an [`Audio`] with `text`.
pub fn load(path: &Path, text: String) -> Result<Audio, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read audio {}: {e}", path.display()))?;
    Audio::from_bytes(bytes, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parameters of vLLM's `custom_audio` dataset.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomAudioSpec {
    /// Number of requests (`None`: every line).
    pub n: Option<usize>,
    /// Output tokens for every request (`--custom-output-len`); -1 leaves it to
    /// the server.
    #[serde(deserialize_with = "crate::dataset::minus_one_is_none")]
    #[schemars(with = "i64")]
    pub output_len: Option<u32>,
    /// Shuffle the lines (vLLM's default).
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
}

impl Default for CustomAudioSpec {
    fn default() -> Self {
        CustomAudioSpec {
            n: None,
            output_len: Some(256),
            shuffle: true,
            seed: 0,
        }
    }
}

/// Loads a `custom_audio` JSONL file (`{"prompt"?, "audio": path}`, paths relative
/// to the file) and builds one request per line; a line's prompt tokens are those
/// of its text.
pub fn generate(
    tok: &Tokenizer,
    path: &Path,
    spec: &CustomAudioSpec,
) -> Result<Vec<Request>, String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut lines: Vec<(usize, String, String)> = Vec::new();
    let example = "{\"prompt\": \"Transcribe the audio.\", \"audio\": \"clip.wav\"}";
    for (line_no, v) in jsonl_objects(path, example)? {
        let here = at(path, line_no);
        let audio = match v.get("audio") {
            Some(Value::String(a)) => a.clone(),
            Some(_) => return Err(format!("{here}: field \"audio\" must be a file path")),
            None => {
                return Err(format!(
                    "{here}: needs \"audio\": the path of a WAV or FLAC file, like {example}"
                ));
            }
        };
        let prompt = match v.get("prompt") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(format!("{here}: field \"prompt\" must be a string")),
        };
        lines.push((line_no, prompt, audio));
    }
    if lines.is_empty() {
        return Err(format!(
            "{}: no requests (the file is empty)",
            path.display()
        ));
    }
    shuffle_take(&mut lines, spec.shuffle, spec.seed, spec.n);
    par_map(&lines, |_, (line_no, prompt, file)| {
        let audio = load(&dir.join(file), prompt.clone())
            .map_err(|e| format!("{}: {e}", at(path, *line_no)))?;
        Ok(Request {
            prompt_tokens: tok.count(prompt) as u32,
            prompt: Prompt::Audio(audio),
            max_tokens: spec.output_len,
            extra: None,
            timestamp: None,
        })
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A mono 16-bit PCM WAV of `samples` zero samples at `rate` Hz.
    pub fn wav(rate: u32, samples: u32) -> Vec<u8> {
        pcm16_wav(&vec![0; samples as usize], rate)
    }

    #[test]
    fn lengths_from_wav_and_flac_headers() {
        assert_eq!(probe(&wav(16_000, 40_000)).unwrap(), ("wav", 2.5));
        // A FLAC STREAMINFO of 44.1 kHz, 2 channels, 16 bits, 88,200 samples (2 s).
        let mut flac = b"fLaC\x00\x00\x00\x22".to_vec();
        let mut si = [0u8; 34];
        si[..4].copy_from_slice(&[0x10, 0x00, 0x10, 0x00]);
        let rate: u32 = 44_100;
        let total: u64 = 88_200;
        si[10] = (rate >> 12) as u8;
        si[11] = (rate >> 4) as u8;
        si[12] = ((rate & 0x0F) << 4) as u8 | (1 << 1); // 2 channels - 1 = 1, in bits 3..1
        si[13] = (15 << 4) as u8 | ((total >> 32) as u8 & 0x0F); // 16 bits - 1 = 15
        si[14..18].copy_from_slice(&(total as u32).to_be_bytes());
        flac.extend_from_slice(&si);
        assert_eq!(probe(&flac).unwrap(), ("flac", 2.0));
        let e = probe(b"ID3\x04rest of an mp3").unwrap_err();
        assert!(e.contains("MP3") && e.contains("ffmpeg"), "{e}");
        assert!(
            probe(b"RIFF\x04\x00\x00\x00WAVE")
                .unwrap_err()
                .contains("no \"data\"")
        );
    }

    #[test]
    fn custom_audio_lines() {
        let dir = std::env::temp_dir().join(format!("mb-custom-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.wav"), wav(16_000, 16_000)).unwrap();
        let path = dir.join("audio.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\": \"Transcribe the audio.\", \"audio\": \"a.wav\"}\n{\"audio\": \"a.wav\"}\n",
        )
        .unwrap();
        let tok = Tokenizer::words();
        let spec = CustomAudioSpec {
            shuffle: false,
            ..Default::default()
        };
        let r = generate(&tok, &path, &spec).unwrap();
        assert_eq!(r.len(), 2);
        let Prompt::Audio(a) = &r[0].prompt else {
            panic!("{:?}", r[0].prompt)
        };
        assert_eq!(
            (a.format, a.seconds, a.text.as_str()),
            ("wav", 1.0, "Transcribe the audio.")
        );
        assert_eq!((r[0].prompt_tokens, r[0].max_tokens), (3, Some(256)));
        assert_eq!(r[1].prompt_tokens, 0);
        for (line, want) in [
            ("{\"prompt\": \"x\"}", "audio.jsonl:1: needs \"audio\""),
            (
                "{\"audio\": \"missing.wav\"}",
                "audio.jsonl:1: cannot read audio",
            ),
            ("{\"audio\": \"audio.jsonl\"}", "convert it first"),
        ] {
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let e = generate(&tok, &path, &spec).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
    }
}
