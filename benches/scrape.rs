//! Cost of reading a server metrics page: a ~200 KB vLLM-like page (40 histograms)
//! through `read_page`. Run: `cargo bench --bench scrape`.

fn main() {
    let mut page = String::new();
    for h in 0..40 {
        page.push_str(&format!(
            "# HELP vllm:hist_{h}_seconds x\n# TYPE vllm:hist_{h}_seconds histogram\n"
        ));
        for b in 0..60 {
            page.push_str(&format!("vllm:hist_{h}_seconds_bucket{{engine=\"0\",le=\"{b}.0\",model_name=\"Qwen/Qwen3-8B\"}} {}.0\n", b * 3));
        }
    }
    page.push_str("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n# TYPE vllm:prefix_cache_hits_total counter\nvllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 3.0\n");
    let t = std::time::Instant::now();
    let n = 200;
    for _ in 0..n {
        let r = moonbench::metrics::server::read_page(&page).unwrap();
        assert!(r.source.is_some());
    }
    println!(
        "page {} KB: {:.3} ms per read",
        page.len() / 1024,
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}
