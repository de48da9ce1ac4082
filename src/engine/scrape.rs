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

/// One attempt at the page.
enum Read {
    /// A page with metrics moonbench knows.
    Page(Reading),
    /// The server answered, without metrics moonbench knows (404, another page).
    None,
    /// No answer in time (a busy server): try again at the next tick.
    Late,
}

async fn read(client: &HttpClient, headers: &[(String, String)]) -> Read {
    let Ok(r) = tokio::time::timeout(READ_TIMEOUT, client.get("/metrics", headers)).await else {
        return Read::Late;
    };
    let Ok((status, body)) = r else {
        return Read::Late;
    };
    if status != 200 {
        return Read::None;
    }
    match std::str::from_utf8(&body)
        .ok()
        .and_then(|b| read_page(b).ok())
    {
        Some(r) if r.source.is_some() => Read::Page(r),
        _ => Read::None,
    }
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
            // The first answer decides whether the server has metrics we know; a
            // server too busy to answer in time is asked again at the next tick.
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last = false;
            loop {
                match read(&client, &headers).await {
                    Read::Page(r) => {
                        let mut guard = out.lock().unwrap();
                        let s = guard.get_or_insert_with(|| ServerSeries {
                            url: url.clone(),
                            interval_s: interval.as_secs_f64(),
                            source: r.source.unwrap_or_default().to_string(),
                            samples: Vec::new(),
                        });
                        s.samples.push((since(clock::now_ns()), r));
                    }
                    Read::None if out.lock().unwrap().is_none() => return,
                    Read::None | Read::Late => {}
                }
                if last {
                    return;
                }
                last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
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
