//! HTTPS and servers that misbehave, through `moonbench bench` as a user runs it:
//! certificates the test makes (rcgen) on 127.0.0.1, a TLS front for the built-in
//! simulator, a server that accepts and never answers, one that stalls in the TLS
//! handshake, one whose `/metrics` never answers. Each must end with one clear
//! message or a complete run, within a stated bound — never hang.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use moonbench::sim::{SimHandle, SimOptions};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_rustls::rustls;

const LIMIT: Duration = Duration::from_secs(60);

fn sim() -> SimHandle {
    let o = SimOptions {
        ttft_ms: Some(5.0),
        itl_ms: Some(1.0),
        ..Default::default()
    };
    SimHandle::start(&o, "127.0.0.1:0").unwrap()
}

/// A certificate for `names`, self-signed, valid from `from` to `until` (days
/// from now), and its key.
fn cert(names: &[&str], from: i64, until: i64) -> (String, String) {
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(from);
    p.not_after = now + time::Duration::days(until);
    let key = rcgen::KeyPair::generate().unwrap();
    let c = p.self_signed(&key).unwrap();
    (c.pem(), key.serialize_pem())
}

/// A TLS front on 127.0.0.1:0 that forwards each connection to `upstream`.
fn tls_front(cert_pem: &str, key_pem: &str, upstream: SocketAddr) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    let certs =
        vec![rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            // Bounded: the test process ends it; no connection outlives 60 s.
            loop {
                let Ok(Ok((s, _))) =
                    tokio::time::timeout(Duration::from_secs(60), l.accept()).await
                else {
                    return;
                };
                let acc = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acc.accept(s).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(60),
                        tokio::io::copy_bidirectional(&mut tls, &mut up),
                    )
                    .await;
                });
            }
        });
    });
    addr
}

/// A server on 127.0.0.1:0 that accepts connections, reads what comes, and never
/// answers (for at most 60 s).
fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        while start.elapsed() < LIMIT {
            if let Ok((s, _)) = l.accept() {
                s.set_read_timeout(Some(Duration::from_millis(10))).ok();
                held.push(s);
            }
            for s in held.iter_mut() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    addr
}

/// A front for `upstream` that forwards everything except `GET /metrics`, which it
/// holds without an answer.
fn metrics_never_answer(upstream: SocketAddr) -> SocketAddr {
    metrics_silent(upstream, usize::MAX)
}

/// A front for `upstream` that holds the first `silent` `GET /metrics` requests
/// without an answer (a server too busy to answer them) and forwards the rest.
fn metrics_silent(upstream: SocketAddr, silent: usize) -> SocketAddr {
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok(Ok((mut s, _))) =
                    tokio::time::timeout(Duration::from_secs(60), l.accept()).await
                else {
                    return;
                };
                let held = held.clone();
                tokio::spawn(async move {
                    let mut first = vec![0u8; 8192];
                    let Ok(n) = s.read(&mut first).await else {
                        return;
                    };
                    first.truncate(n);
                    if first.starts_with(b"GET /metrics")
                        && held.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < silent
                    {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    use tokio::io::AsyncWriteExt;
                    if up.write_all(&first).await.is_err() {
                        return;
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_secs(60),
                        tokio::io::copy_bidirectional(&mut s, &mut up),
                    )
                    .await;
                });
            }
        });
    });
    addr
}

fn bench_args(url: &str) -> Vec<String> {
    [
        "bench",
        "--base-url",
        url,
        "--tokenizer",
        "words",
        "--num-prompts",
        "6",
        "--random-input-len",
        "8",
        "--random-output-len",
        "8",
        "--disable-tqdm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_args(args: &[String]) -> (std::process::Output, Duration) {
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let t = Instant::now();
    let out = run(&refs, LIMIT);
    (out, t.elapsed())
}

#[test]
fn a_private_certificate_fails_at_once_and_the_fixes_work() {
    let sim = sim();
    let (c, k) = cert(&["127.0.0.1"], -1, 30);
    let front = tls_front(&c, &k, sim.addr);
    let url = format!("https://{front}");
    let dir = tmpdir("tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &c).unwrap();

    // Unknown CA: one clear message, no 60 s retry loop.
    let (out, took) = run_args(&bench_args(&url));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: retried a certificate error?"
    );
    for want in ["127.0.0.1", "unknown CA", "--ca-cert", "--insecure"] {
        assert!(stderr.contains(want), "missing {want:?}: {stderr}");
    }
    assert!(!stderr.contains("Is it running"), "{stderr}");
    // With --lang zh the same message follows in Chinese.
    let mut a = bench_args(&url);
    a.extend(["--lang".to_string(), "zh".to_string()]);
    let (out, _) = run_args(&a);
    let (_, stderr) = text(&out);
    for want in [
        "TLS 证书被拒绝",
        "未知的 CA",
        "--ca-cert 文件",
        "--insecure 跳过检查",
    ] {
        assert!(stderr.contains(want), "missing {want:?}: {stderr}");
    }

    // --ca-cert, SSL_CERT_FILE and --insecure each make it work.
    let mut a = bench_args(&url);
    a.extend(["--ca-cert".to_string(), ca.to_str().unwrap().to_string()]);
    let (out, _) = run_args(&a);
    assert!(out.status.success(), "--ca-cert: {}", text(&out).1);
    assert!(
        text(&out)
            .0
            .contains("Successful requests:                     6")
    );

    let refs: Vec<String> = bench_args(&url);
    let out = wait(
        bin()
            .args(&refs)
            .env("SSL_CERT_FILE", &ca)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert!(out.status.success(), "SSL_CERT_FILE: {}", text(&out).1);

    let mut a = bench_args(&url);
    a.push("--insecure".into());
    let (out, _) = run_args(&a);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "--insecure: {stderr}");
    assert!(stderr.contains("warning: --insecure"), "{stderr}");

    // A --ca-cert that is not a certificate names the file.
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let mut a = bench_args(&url);
    a.extend(["--ca-cert".to_string(), bad.to_str().unwrap().to_string()]);
    let (out, _) = run_args(&a);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.pem") && stderr.contains("no certificate"),
        "{stderr}"
    );

    // A --ca-cert for a plain-HTTP server is a mistake in one of them: said at once.
    let mut a = bench_args(&url.replacen("https://", "http://", 1));
    a.extend(["--ca-cert".to_string(), ca.to_str().unwrap().to_string()]);
    let (out, _) = run_args(&a);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--ca-cert is for HTTPS") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[test]
fn expired_and_wrong_name_certificates_say_so() {
    let sim = sim();
    let dir = tmpdir("tls-bad");
    for (names, from, until, want) in [
        (&["127.0.0.1"][..], -30, -1, "expired"),
        (
            &["llm.example.test"][..],
            -1,
            30,
            "not valid for the name '127.0.0.1'",
        ),
    ] {
        let (c, k) = cert(names, from, until);
        let front = tls_front(&c, &k, sim.addr);
        let ca = dir.join(format!("{want}.pem").replace(['\'', ' '], "_"));
        std::fs::write(&ca, &c).unwrap();
        let mut a = bench_args(&format!("https://{front}"));
        a.extend(["--ca-cert".to_string(), ca.to_str().unwrap().to_string()]);
        let (out, took) = run_args(&a);
        let (_, stderr) = text(&out);
        assert!(!out.status.success());
        assert!(took < Duration::from_secs(15), "took {took:?}");
        assert!(stderr.contains(want), "missing {want:?}: {stderr}");
    }
}

#[test]
fn a_server_that_never_answers_ends_at_the_ready_timeout() {
    for scheme in ["http", "https"] {
        let addr = silent_server();
        let mut a = bench_args(&format!("{scheme}://{addr}"));
        a.extend(["--ready-check-timeout-sec".to_string(), "2".to_string()]);
        let (out, took) = run_args(&a);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{scheme}");
        assert!(
            took < Duration::from_secs(8),
            "{scheme}: took {took:?} with --ready-check-timeout-sec 2"
        );
        assert!(stderr.contains("not ready after 2 s"), "{scheme}: {stderr}");
    }
    // Without the ready check, each request ends at --request-timeout.
    let addr = silent_server();
    let dir = tmpdir("silent");
    let mut a = bench_args(&format!("http://{addr}"));
    a.extend(
        [
            "--ready-check-timeout-sec",
            "0",
            "--request-timeout",
            "1.5",
            "--model",
            "m",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let (out, took) = run_args(&a);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(!out.status.success(), "no request succeeded: exit 1");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["failed"], 6, "the failures are kept as records");
    assert_eq!(r["errors_by_kind"]["timeout"], 6, "{}", r["errors_by_kind"]);
}

/// Runs `bench` against `url` with `extra` flags, saving the result; returns the
/// result JSON and how long the process took.
fn bench_result(url: &str, name: &str, extra: &[&str]) -> (Value, Duration) {
    let dir = tmpdir(name);
    let mut a = bench_args(url);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(
        [
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let (out, took) = run_args(&a);
    assert!(out.status.success(), "{}", text(&out).1);
    let r = serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    (r, took)
}

/// A server too busy to answer the first reading of `/metrics` in time is asked
/// again: its metrics are read from the next one on.
#[test]
fn a_late_first_metrics_reading_is_retried() {
    let sim = sim();
    let front = metrics_silent(sim.addr, 1);
    let (r, _) = bench_result(
        &format!("http://{front}"),
        "metrics-late",
        &["--num-prompts", "30", "--request-rate", "10"],
    );
    let sm = &r["server_metrics"];
    assert_eq!(sm["source"], "vllm", "{sm}");
    assert!(sm["summary"]["samples"].as_u64().unwrap() >= 1, "{sm}");
}

#[test]
fn a_silent_metrics_page_delays_the_end_by_at_most_a_second() {
    let sim = sim();
    let front = metrics_never_answer(sim.addr);
    let (r, took) = bench_result(&format!("http://{front}"), "metrics-silent", &[]);
    let duration = r["duration"].as_f64().unwrap();
    // The run itself lasts ~50 ms; start-up (ready check, tokenizer) is well under
    // a second; the silent page may add at most 1 s at the end.
    assert!(
        took.as_secs_f64() < duration + 1.0 + 2.0,
        "took {took:?} for a {duration:.2} s run"
    );
}

#[test]
fn request_timeout_zero_is_an_error() {
    let (out, _) = run_args(
        &["bench", "--request-timeout", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--request-timeout must be > 0"), "{stderr}");
}
