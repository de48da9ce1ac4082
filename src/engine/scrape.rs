//! Reads the server's Prometheus `/metrics` page at an interval while a run goes
//! (one small task on the I/O runtime, never on the request path), plus one last
//! reading after the run so counters cover all of it. A server without the page,
//! or without any metric moonbench knows, is skipped without a word.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::http::HttpClient;
use crate::clock;
use crate::metrics::server::{Reading, ServerSeries, read_page};

/// A running scraper.
pub struct Scraper {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Option<ServerSeries>>,
}

async fn read(client: &HttpClient, headers: &[(String, String)]) -> Option<Reading> {
    let (status, body) = client.get("/metrics", headers).await.ok()?;
    if status != 200 {
        return None;
    }
    read_page(std::str::from_utf8(&body).ok()?).ok()
}

impl Scraper {
    /// Starts reading every `interval`; times are seconds since `t0_ns`.
    pub fn start(
        client: Arc<HttpClient>,
        headers: Vec<(String, String)>,
        interval: Duration,
        t0_ns: u64,
    ) -> Scraper {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let url = format!("{}/metrics", client.base().as_string());
            let mut series = ServerSeries {
                url,
                interval_s: interval.as_secs_f64(),
                ..Default::default()
            };
            let since = |now: u64| clock::secs(now.saturating_sub(t0_ns));
            // The first reading decides whether the server has metrics we know.
            let first = read(&client, &headers).await?;
            series.source = first.source?.to_string();
            series.samples.push((since(clock::now_ns()), first));
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => last = true,
                }
                if let Some(r) = read(&client, &headers).await.filter(|r| r.source.is_some()) {
                    series.samples.push((since(clock::now_ns()), r));
                }
                if last {
                    return Some(series);
                }
            }
        });
        Scraper { stop, task }
    }

    /// Takes the last reading and returns the series (`None`: no usable metrics).
    pub async fn finish(self) -> Option<ServerSeries> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(s)) => s,
            _ => None,
        }
    }
}
