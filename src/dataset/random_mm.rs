//! vLLM's `random-mm` dataset: synthetic images added to text requests. Each
//! request gets a number of items drawn from `[⌊n(1−r)⌋, ⌈n(1+r)⌉]` (capped by
//! the per-modality limits), each item's size drawn from the bucket
//! probabilities; a modality at its cap has its buckets removed and the rest
//! renormalized — vLLM's `RandomMultiModalDataset`. Images are i.i.d. random RGB
//! pixels (the worst case for compression, as vLLM's), JPEG-encoded at quality 75
//! with 4:2:0 chroma (what PIL's `save(format="JPEG")` does) and sent as
//! `image_url` data URLs after the text. Video buckets are refused: moonbench has
//! no MP4 encoder.

use std::collections::BTreeMap;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{Prompt, Request, par_map};

/// One item size and its probability (vLLM's `(height, width, num_frames): p`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
    /// 1 for an image; more is a video (not supported).
    #[serde(default = "one")]
    pub frames: u32,
    /// Relative probability (the buckets are normalized to sum to 1).
    pub probability: f64,
}

fn one() -> u32 {
    1
}

/// Parameters of `reqs:with_images{...}` (vLLM's `--random-mm-*` flags).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesSpec {
    /// Items per request before the range ratio (`--random-mm-base-items-per-request`, default 1).
    pub base_items_per_request: u32,
    /// Items per request vary within ±this ratio, 0 to 1 (`--random-mm-num-mm-items-range-ratio`).
    pub num_mm_items_range_ratio: f64,
    /// Most items per request of each modality (`--random-mm-limit-mm-per-prompt`,
    /// default `{ image = 255, video = 1 }`).
    pub limit_mm_per_prompt: BTreeMap<String, u32>,
    /// Item sizes and probabilities (`--random-mm-bucket-config`; default vLLM's:
    /// 256×256 and 720×1280 images, half each).
    pub buckets: Vec<Bucket>,
    /// Seed of the counts, sizes and pixels.
    pub seed: u64,
}

impl Default for ImagesSpec {
    fn default() -> Self {
        ImagesSpec {
            base_items_per_request: 1,
            num_mm_items_range_ratio: 0.0,
            limit_mm_per_prompt: [("image".to_string(), 255), ("video".to_string(), 1)].into(),
            buckets: vec![
                Bucket {
                    height: 256,
                    width: 256,
                    frames: 1,
                    probability: 0.5,
                },
                Bucket {
                    height: 720,
                    width: 1280,
                    frames: 1,
                    probability: 0.5,
                },
                Bucket {
                    height: 720,
                    width: 1280,
                    frames: 16,
                    probability: 0.0,
                },
            ],
            seed: 0,
        }
    }
}

fn modality(b: &Bucket) -> &'static str {
    if b.frames > 1 { "video" } else { "image" }
}

/// Drops zero-probability buckets and normalizes the rest to sum to 1.
fn normalize(buckets: &[Bucket]) -> Result<Vec<Bucket>, String> {
    if buckets
        .iter()
        .any(|b| b.probability.is_nan() || b.probability < 0.0)
    {
        return Err("bucket probabilities must be 0 or more".into());
    }
    let kept: Vec<Bucket> = buckets
        .iter()
        .filter(|b| b.probability > 0.0)
        .cloned()
        .collect();
    let total: f64 = kept.iter().map(|b| b.probability).sum();
    if kept.is_empty() {
        return Err("every bucket has probability 0: give at least one a probability".into());
    }
    Ok(kept
        .into_iter()
        .map(|mut b| {
            b.probability /= total;
            b
        })
        .collect())
}

/// The checked sampling plan: item count range, limits and buckets.
struct Plan {
    min: u32,
    max: u32,
    limits: BTreeMap<String, u32>,
    buckets: Vec<Bucket>,
}

fn plan(spec: &ImagesSpec) -> Result<Plan, String> {
    let r = spec.num_mm_items_range_ratio;
    if !(0.0..=1.0).contains(&r) {
        return Err(format!(
            "num_mm_items_range_ratio must be between 0 and 1, got {r}"
        ));
    }
    for b in &spec.buckets {
        if b.height == 0 || b.width == 0 || b.height > 16384 || b.width > 16384 {
            return Err(format!(
                "bucket ({}, {}, {}): height and width must be 1 to 16384 pixels",
                b.height, b.width, b.frames
            ));
        }
        if b.frames == 0 {
            return Err(format!(
                "bucket ({}, {}, 0): num_frames must be 1 (an image) or more (a video)",
                b.height, b.width
            ));
        }
        let m = modality(b);
        if !spec.limit_mm_per_prompt.contains_key(m) {
            return Err(format!(
                "bucket ({}, {}, {}) is a {m} but limit_mm_per_prompt has only {} \
                 (give it a limit, like \"{m}\": 0, or leave the bucket out)",
                b.height,
                b.width,
                b.frames,
                spec.limit_mm_per_prompt
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let buckets = normalize(&spec.buckets)?;
    if let Some(v) = buckets.iter().find(|b| b.frames > 1) {
        return Err(format!(
            "bucket ({}, {}, {}) is a video, which moonbench cannot make (no MP4 encoder): \
             give video buckets probability 0, as vLLM's default does",
            v.height, v.width, v.frames
        ));
    }
    let limits: BTreeMap<String, u32> = spec
        .limit_mm_per_prompt
        .iter()
        .filter(|(k, _)| buckets.iter().any(|b| modality(b) == k.as_str()))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let base = spec.base_items_per_request as f64;
    let max = (limits.values().sum::<u32>() as f64)
        .min((base * (1.0 + r)).ceil())
        .max(0.0) as u32;
    let min = (base * (1.0 - r)).floor().max(0.0) as u32;
    if min > max {
        return Err(format!(
            "at least {min} items per request are asked for, but the limits allow {max}"
        ));
    }
    Ok(Plan {
        min,
        max,
        limits,
        buckets,
    })
}

/// The item sizes of one request (vLLM's `get_mm_item_iterator`).
fn draw_items(p: &Plan, rng: &mut ChaCha8Rng) -> Vec<(u32, u32)> {
    let k = rng.random_range(p.min..=p.max);
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut weights: Vec<f64> = p.buckets.iter().map(|b| b.probability).collect();
    let mut out = Vec::new();
    while (out.len() as u32) < k {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut x = rng.random::<f64>() * total;
        let mut i = weights.len() - 1;
        for (j, w) in weights.iter().enumerate() {
            if x < *w {
                i = j;
                break;
            }
            x -= w;
        }
        let b = &p.buckets[i];
        let m = modality(b);
        let c = counts.entry(m).or_insert(0);
        if *c < p.limits.get(m).copied().unwrap_or(0) {
            *c += 1;
            out.push((b.width, b.height));
        } else {
            for (w, b2) in weights.iter_mut().zip(&p.buckets) {
                if modality(b2) == m {
                    *w = 0.0;
                }
            }
        }
    }
    out
}

/// A `width`×`height` image of random RGB pixels as a JPEG data URL.
fn noise_jpeg(width: u32, height: u32, rng: &mut ChaCha8Rng) -> Result<String, String> {
    use base64::Engine;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    rng.fill_bytes(&mut pixels);
    let mut out = Vec::with_capacity(pixels.len() / 2);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 75);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(
        &pixels,
        width as u16,
        height as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .map_err(|e| format!("cannot encode a {width}x{height} JPEG: {e}"))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&out)
    ))
}

/// Adds synthetic images to every text request: each becomes one user message of
/// its text followed by its `image_url` parts. Deterministic for a seed (each
/// request draws from its own stream), built on all cores.
pub fn add_images(reqs: &mut [Request], spec: &ImagesSpec) -> Result<(), String> {
    let p = plan(spec)?;
    let made: Vec<Result<Option<Prompt>, String>> = par_map(reqs, |i, r| {
        let text = match &r.prompt {
            Prompt::Text(_) | Prompt::Parts(_) => r.prompt.text().unwrap_or_default().to_string(),
            _ => {
                return Err(format!(
                    "request {}: images go with a text prompt (this one is messages, token ids or a batch)",
                    i + 1
                ));
            }
        };
        let mut rng = ChaCha8Rng::seed_from_u64(
            spec.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let items = draw_items(&p, &mut rng);
        if items.is_empty() {
            return Ok(None);
        }
        let mut parts = vec![json!({"type": "text", "text": text})];
        for (w, h) in items {
            let url = noise_jpeg(w, h, &mut rng)?;
            parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
        }
        Ok(Some(Prompt::Messages(
            json!([{"role": "user", "content": parts}]),
        )))
    });
    for (r, m) in reqs.iter_mut().zip(made) {
        if let Some(p) = m? {
            r.prompt = p;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_reqs(n: usize) -> Vec<Request> {
        (0..n)
            .map(|i| Request::text(format!("p{i}"), 1, Some(4)))
            .collect()
    }

    fn images(r: &Request) -> Vec<String> {
        match &r.prompt {
            Prompt::Messages(m) => m[0]["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["image_url"]["url"].as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// JPEG's SOF0 frame header holds the height and width.
    fn jpeg_size(url: &str) -> (u32, u32) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(url.strip_prefix("data:image/jpeg;base64,").unwrap())
            .unwrap();
        assert_eq!(&b[..2], &[0xFF, 0xD8], "a JPEG");
        let i = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let h = u16::from_be_bytes([b[i + 5], b[i + 6]]) as u32;
        let w = u16::from_be_bytes([b[i + 7], b[i + 8]]) as u32;
        (w, h)
    }

    #[test]
    fn counts_sizes_and_caps_follow_vllm() {
        let spec = ImagesSpec {
            base_items_per_request: 2,
            num_mm_items_range_ratio: 0.5,
            limit_mm_per_prompt: [("image".to_string(), 2)].into(),
            buckets: vec![
                Bucket {
                    height: 16,
                    width: 32,
                    frames: 1,
                    probability: 3.0,
                },
                Bucket {
                    height: 8,
                    width: 8,
                    frames: 1,
                    probability: 1.0,
                },
            ],
            seed: 7,
        };
        let mut reqs = text_reqs(400);
        add_images(&mut reqs, &spec).unwrap();
        let mut per = [0usize; 3];
        let (mut big, mut all) = (0, 0);
        for r in &reqs {
            let imgs = images(r);
            // [floor(2*0.5), ceil(2*1.5)] = [1, 3], capped at the limit 2.
            assert!((1..=2).contains(&imgs.len()), "{}", imgs.len());
            per[imgs.len()] += 1;
            for u in imgs {
                let s = jpeg_size(&u);
                assert!(s == (32, 16) || s == (8, 8), "{s:?}");
                big += (s == (32, 16)) as usize;
                all += 1;
            }
        }
        assert!(per[1] > 100 && per[2] > 100, "{per:?}");
        let share = big as f64 / all as f64;
        assert!((share - 0.75).abs() < 0.06, "{share}");
        // The same seed gives the same images; the text comes first.
        let mut again = text_reqs(400);
        add_images(&mut again, &spec).unwrap();
        assert_eq!(reqs, again);
        let Prompt::Messages(m) = &reqs[3].prompt else {
            panic!()
        };
        assert_eq!(m[0]["content"][0]["text"], "p3");
    }

    #[test]
    fn bad_configs_are_refused() {
        let video = ImagesSpec {
            buckets: vec![Bucket {
                height: 8,
                width: 8,
                frames: 4,
                probability: 1.0,
            }],
            ..ImagesSpec::default()
        };
        assert!(plan(&video).err().unwrap().contains("video"));
        let zero = ImagesSpec {
            buckets: vec![Bucket {
                height: 8,
                width: 8,
                frames: 1,
                probability: 0.0,
            }],
            ..ImagesSpec::default()
        };
        assert!(plan(&zero).err().unwrap().contains("probability 0"));
        let ratio = ImagesSpec {
            num_mm_items_range_ratio: 1.5,
            ..ImagesSpec::default()
        };
        assert!(plan(&ratio).is_err());
        let nolimit = ImagesSpec {
            limit_mm_per_prompt: [("video".to_string(), 1)].into(),
            ..ImagesSpec::default()
        };
        assert!(
            plan(&nolimit)
                .err()
                .unwrap()
                .contains("limit_mm_per_prompt")
        );
    }
}
