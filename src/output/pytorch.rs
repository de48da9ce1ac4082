//! vLLM's PyTorch-benchmark output format (`*.pytorch.json`, `benchmark_utils.py`):
//! one record per metric, each carrying the run's arguments and every other result
//! key, written the way vLLM's `InfEncoder` writes JSON (±inf as the string "inf").

use serde_json::{Map, Value, json};

/// The metrics vLLM's serving benchmark exports, in its order.
pub const METRICS: [&str; 12] = [
    "median_ttft_ms",
    "mean_ttft_ms",
    "std_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "mean_itl_ms",
    "std_itl_ms",
    "p99_itl_ms",
];

/// Result keys vLLM leaves out of every record's `extra_info`.
pub const IGNORED: [&str; 4] = ["ttfts", "itls", "generated_texts", "errors"];

/// Replaces ±inf floats with "inf", recursively (vLLM's `InfEncoder`).
pub fn inf_encode(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(|f| f.is_infinite()) => json!("inf"),
        Value::Array(a) => Value::Array(a.iter().map(inf_encode).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), inf_encode(v))).collect())
        }
        other => other.clone(),
    }
}

/// The records for one result: metrics present in `result` (vLLM would fail on a
/// missing one; here it is skipped), `args` as the run's arguments.
pub fn records(result: &Map<String, Value>, args: &Value, model: &str) -> Value {
    let extra: Map<String, Value> = result
        .iter()
        .filter(|(k, _)| !METRICS.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut args = args.clone();
    if let Value::Object(a) = &mut args {
        if a.get("tensor_parallel_size").is_none_or(|v| v.is_null()) {
            if let Some(tp) = extra.get("tensor_parallel_size") {
                a.insert("tensor_parallel_size".into(), tp.clone());
            }
        }
    }
    let recs: Vec<Value> = METRICS
        .iter()
        .filter_map(|m| result.get(*m).map(|v| (m, v)))
        .map(|(name, value)| {
            json!({
                "benchmark": {"name": "vLLM benchmark", "extra_info": {"args": args}},
                "model": {"name": model},
                "metric": {"name": name, "benchmark_values": [value], "extra_info": extra},
            })
        })
        .collect();
    inf_encode(&Value::Array(recs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_metric_with_vllms_field_names() {
        let mut r = Map::new();
        for (i, m) in METRICS.iter().enumerate() {
            r.insert(m.to_string(), json!(i as f64));
        }
        r.insert("completed".into(), json!(10));
        r.insert("ttfts".into(), json!([0.1]));
        r.insert("tensor_parallel_size".into(), json!(2));
        let out = records(
            &r,
            &json!({"model": "m", "request_rate": f64::INFINITY.to_string()}),
            "m",
        );
        let recs = out.as_array().unwrap();
        assert_eq!(recs.len(), 12);
        let first = &recs[0];
        assert_eq!(first["benchmark"]["name"], "vLLM benchmark");
        assert_eq!(first["model"]["name"], "m");
        assert_eq!(first["metric"]["name"], "median_ttft_ms");
        assert_eq!(first["metric"]["benchmark_values"], json!([0.0]));
        assert_eq!(first["metric"]["extra_info"]["completed"], 10);
        assert!(first["metric"]["extra_info"].get("ttfts").is_none());
        assert!(first["metric"]["extra_info"].get("p99_itl_ms").is_none());
        assert_eq!(
            first["benchmark"]["extra_info"]["args"]["tensor_parallel_size"],
            2
        );
    }

    #[test]
    fn infinities_become_strings() {
        let v: Value = serde_json::from_str("[1.5, {\"x\": 2}]").unwrap();
        assert_eq!(inf_encode(&v), v);
    }
}
