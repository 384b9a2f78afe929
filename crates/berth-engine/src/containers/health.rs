//! Health checks run by the daemon (`HEALTHCHECK`/`--health-*`): the test command is
//! exec'd in the container every interval; `retries` consecutive failures make it
//! unhealthy. The loop is started with the container and again when a restarted
//! daemon re-adopts it.

use std::sync::Arc;
use std::time::Duration;

use super::record::{HealthProbe, Status};
use super::{Container, ContainerService};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_OUTPUT: usize = 4096;
const KEEP_PROBES: usize = 5;

fn nanos(value: Option<i64>, default: Duration) -> Duration {
    match value {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl ContainerService {
    pub(crate) fn start_health_checks(self: &Arc<Self>, c: &Arc<Container>) {
        let record = c.record();
        let Some(check) = record.config.healthcheck.clone() else {
            return;
        };
        let test = check.test.clone().unwrap_or_default();
        let cmd = match test.first().map(String::as_str) {
            Some("CMD") => test[1..].to_vec(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
            _ => return,
        };
        if cmd.is_empty() {
            return;
        }
        let interval = nanos(check.interval, DEFAULT_INTERVAL);
        let timeout = nanos(check.timeout, DEFAULT_TIMEOUT);
        let start_period = nanos(check.start_period, Duration::ZERO);
        let start_interval = nanos(check.start_interval, interval);
        let retries = check.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let service = self.clone();
        let c = c.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            let mut lifecycle = c.subscribe();
            let generation = lifecycle.borrow_and_update().exits;
            loop {
                let in_start_period = started.elapsed() < start_period;
                let wait = if in_start_period {
                    start_interval
                } else {
                    interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = lifecycle.changed() => {}
                }
                let now = lifecycle.borrow_and_update().clone();
                if now.exits != generation || now.removed || !now.running {
                    return;
                }
                if c.record().state.status != Status::Running {
                    continue;
                }
                let begin = chrono::Utc::now();
                let result = tokio::time::timeout(
                    timeout,
                    service.exec_capture(&c, cmd.clone(), MAX_OUTPUT),
                )
                .await;
                let (code, output) = match result {
                    Ok(Ok((code, output))) => (i64::from(code), output),
                    Ok(Err(err)) => (-1, err.to_string()),
                    Err(_) => (-1, format!("Health check exceeded timeout ({timeout:?})")),
                };
                let end = chrono::Utc::now();
                let in_start_period = started.elapsed() < start_period;
                let mut changed_to = None;
                let _ = c.update(|r| {
                    let health = r.state.health.get_or_insert_with(Default::default);
                    health.log.push(HealthProbe {
                        start: begin.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                        end: end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                        exit_code: code,
                        output,
                    });
                    if health.log.len() > KEEP_PROBES {
                        health.log.remove(0);
                    }
                    let before = health.status.clone();
                    if code == 0 {
                        health.failing_streak = 0;
                        health.status = "healthy".into();
                    } else if !in_start_period {
                        health.failing_streak += 1;
                        if health.failing_streak >= retries {
                            health.status = "unhealthy".into();
                        }
                    }
                    if health.status != before {
                        changed_to = Some(health.status.clone());
                    }
                });
                if let Some(status) = changed_to {
                    service.event(&format!("health_status: {status}"), &c.record(), &[]);
                }
            }
        });
    }
}
