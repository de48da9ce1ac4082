//! Reads the server's Prometheus `/metrics` page at an interval while a run goes
//! (one small task on the I/O runtime, never on the request path), plus one last
//! reading after the run so counters cover all of it. A server without the page,
//! or without any metric moonbench knows, is skipped without a word.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::http::HttpClient;
use crate::clock;
use crate::metrics::server::{Reading, ServerSeries, read_page};

/// How long one reading of `/metrics` may take, and how much the last reading may
/// delay the end of a run.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// A running scraper.
pub struct Scraper {
    stop: oneshot::Sender<()>,
    series: Arc<Mutex<Option<ServerSeries>>>,
    task: JoinHandle<()>,
}

async fn read(client: &HttpClient, headers: &[(String, String)]) -> Option<Reading> {
    let (status, body) = tokio::time::timeout(READ_TIMEOUT, client.get("/metrics", headers))
        .await
        .ok()?
        .ok()?;
    if status != 200 {
        return None;
    }
    read_page(std::str::from_utf8(&body).ok()?).ok()
}

impl Scraper {
    /// Starts reading every `interval`; times are seconds since `t0_ns`. Each reading
    /// is bounded by [`READ_TIMEOUT`], so a silent `/metrics` never holds a run.
    pub fn start(
        client: Arc<HttpClient>,
        headers: Vec<(String, String)>,
        interval: Duration,
        t0_ns: u64,
    ) -> Scraper {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let series = Arc::new(Mutex::new(None::<ServerSeries>));
        let out = series.clone();
        let task = tokio::spawn(async move {
            let url = format!("{}/metrics", client.base().as_string());
            let since = |now: u64| clock::secs(now.saturating_sub(t0_ns));
            // The first reading decides whether the server has metrics we know.
            let Some(first) = read(&client, &headers).await else {
                return;
            };
            let Some(source) = first.source else {
                return;
            };
            *out.lock().unwrap() = Some(ServerSeries {
                url,
                interval_s: interval.as_secs_f64(),
                source: source.to_string(),
                samples: vec![(since(clock::now_ns()), first)],
            });
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                if let Some(r) = read(&client, &headers).await.filter(|r| r.source.is_some()) {
                    if let Some(s) = out.lock().unwrap().as_mut() {
                        s.samples.push((since(clock::now_ns()), r));
                    }
                }
                if last {
                    return;
                }
            }
        });
        Scraper { stop, series, task }
    }

    /// Takes the last reading (waiting at most [`READ_TIMEOUT`] for it) and returns
    /// the series (`None`: no usable metrics).
    pub async fn finish(self) -> Option<ServerSeries> {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(READ_TIMEOUT + Duration::from_millis(50), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
        self.series.lock().unwrap().take()
    }
}
