//! Everything after start: the monitor that records exits and applies restart
//! policies, stop/kill/restart/pause, wait, remove, and re-adopting running containers
//! when the daemon starts.

use std::sync::Arc;
use std::time::Duration;

use berth_shim::ExitStatus;
use bollard_stubs::models::RestartPolicyNameEnum;

use super::record::Status;
use super::start::libc_sigkill;
use super::{Container, ContainerService};
use crate::error::{EngineError, Result};

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(text: &str) -> Result<WaitCondition> {
        match text {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::invalid(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// Docker's signal names and numbers (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(text: &str) -> Result<i32> {
    let invalid = || EngineError::invalid(format!("Invalid signal: {text}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        };
    }
    let name = text.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" | "CLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            if let Some(rest) = name.strip_prefix("RTMIN+") {
                34 + rest.parse::<i32>().map_err(|_| invalid())?
            } else if let Some(rest) = name.strip_prefix("RTMAX-") {
                64 - rest.parse::<i32>().map_err(|_| invalid())?
            } else {
                return Err(invalid());
            }
        }
    };
    Ok(n)
}

fn not_running(c: &Container) -> EngineError {
    EngineError::conflict(format!("Container {} is not running", c.id))
}

impl ContainerService {
    /// Waits for the shim to report the exit (or to vanish), then records it.
    pub(crate) async fn monitor(self: Arc<Self>, c: Arc<Container>) {
        let status = match c.shim().wait().await {
            Ok(status) => status,
            Err(err) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                c.state_dir.read_exit().unwrap_or_else(|| {
                    let mut status = ExitStatus::now(255, false);
                    status.error = Some(format!("lost the container's shim: {err}"));
                    status
                })
            }
        };
        self.on_exit(&c, status);
    }

    /// Records an exit, then removes the container (`--rm`) or applies its restart
    /// policy.
    pub(crate) fn on_exit(self: &Arc<Self>, c: &Arc<Container>, status: ExitStatus) {
        self.release_mounts(c);
        let code = i64::from(status.exit_code);
        let started_at = c.record().state.started_at;
        let exited = |r: &mut super::record::ContainerRecord| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.oom_killed = status.oom_killed;
            r.state.finished_at = status.finished_at.clone();
            r.state.error = status.error.clone().unwrap_or_default();
            if let Some(health) = &mut r.state.health {
                health.status = "unhealthy".into();
            }
        };
        // A `--rm` container's record is deleted next: its exit need not reach the disk
        // (after a crash, the shim's exit.json brings the daemon back here).
        if c.record().host_config.auto_remove.unwrap_or(false) {
            c.update_in_memory(exited);
        } else {
            let _ = c.update(exited);
        }
        let record = c.record();
        if status.oom_killed {
            self.event("oom", &record, &[]);
        }
        self.event("die", &record, &[("exitCode", code.to_string())]);
        c.lifecycle.send_modify(|l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
        });
        if record.host_config.auto_remove.unwrap_or(false) {
            let service = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                if let Err(err) = service.remove_container(&c, true).await {
                    tracing::warn!(id = %c.id, "auto-remove: {err}");
                }
            });
            return;
        }
        if self.should_restart(&record, code) {
            let ran_for = chrono::DateTime::parse_from_rfc3339(&started_at)
                .map(|t| {
                    chrono::Utc::now()
                        .signed_duration_since(t)
                        .num_milliseconds()
                })
                .unwrap_or(0);
            let service = self.clone();
            let c = c.clone();
            tokio::spawn(async move { service.restart_after_exit(c, ran_for).await });
        }
    }

    fn should_restart(&self, record: &super::record::ContainerRecord, code: i64) -> bool {
        if record.manually_stopped {
            return false;
        }
        let Some(policy) = &record.host_config.restart_policy else {
            return false;
        };
        match policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY) {
            RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
            RestartPolicyNameEnum::ON_FAILURE => {
                let max = policy.maximum_retry_count.unwrap_or(0);
                code != 0 && (max == 0 || record.restart_count < max)
            }
            _ => false,
        }
    }

    async fn restart_after_exit(self: Arc<Self>, c: Arc<Container>, ran_for_ms: i64) {
        // Docker's back-off: 100 ms doubling per quick restart, reset after 10 s of run.
        let count = c.record().restart_count;
        let delay = if ran_for_ms > 10_000 {
            100
        } else {
            (100u64 << count.clamp(0, 10)).min(60_000)
        };
        let _ = c.update(|r| r.state.status = Status::Restarting);
        c.lifecycle.send_modify(|l| l.running = true);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let _op = c.op.lock().await;
        let record = c.record();
        if record.manually_stopped || record.state.status != Status::Restarting {
            if record.state.status == Status::Restarting {
                let _ = c.update(|r| r.state.status = Status::Exited);
            }
            c.lifecycle.send_modify(|l| l.running = false);
            return;
        }
        let _ = c.update(|r| r.restart_count += 1);
        if let Err(err) = self.start_locked(&c).await {
            tracing::warn!(id = %c.id, "restart: {err}");
            let _ = c.update(|r| r.state.status = Status::Exited);
            c.lifecycle.send_modify(|l| l.running = false);
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after `timeout`
    /// seconds (-1 waits forever).
    pub async fn stop(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        let record = c.record();
        if !matches!(
            record.state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return Err(EngineError::not_modified());
        }
        c.update(|r| r.manually_stopped = true)?;
        if record.state.status == Status::Restarting {
            let _ = c.update(|r| r.state.status = Status::Exited);
            c.lifecycle.send_modify(|l| l.running = false);
            self.event("stop", &c.record(), &[]);
            return Ok(());
        }
        let signal = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => match record
                .config
                .stop_signal
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                Some(s) => parse_signal(s)?,
                None => 15,
            },
        };
        let timeout = timeout.or(record.config.stop_timeout).unwrap_or(10);
        self.stop_locked(&c, signal, timeout).await?;
        self.event("stop", &c.record(), &[]);
        Ok(())
    }

    async fn stop_locked(&self, c: &Arc<Container>, signal: i32, timeout: i64) -> Result<()> {
        let mut rx = c.subscribe();
        if !rx.borrow_and_update().running {
            return Ok(());
        }
        let shim = c.shim();
        if c.record().state.status == Status::Paused {
            let _ = shim.resume().await;
            let _ = c.update(|r| r.state.status = Status::Running);
        }
        self.event("kill", &c.record(), &[("signal", signal.to_string())]);
        let _ = shim.kill(signal, false).await;
        let stopped = async {
            while rx.borrow_and_update().running {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        if timeout < 0 {
            stopped.await;
            return Ok(());
        }
        if tokio::time::timeout(Duration::from_secs(timeout as u64), stopped)
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.event("kill", &c.record(), &[("signal", "9".into())]);
        let _ = shim.kill(libc_sigkill(), true).await;
        let killed = async {
            while rx.borrow_and_update().running {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), killed)
            .await
            .map_err(|_| {
                EngineError::internal(format!(
                    "container {} did not exit within 30 seconds of SIGKILL",
                    c.id
                ))
            })
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        let record = c.record();
        if !record.state.status.is_live() {
            return Err(EngineError::conflict(format!(
                "cannot kill container: {name}: container {} is not running",
                c.id
            )));
        }
        let signal = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        if signal == 9 {
            c.update(|r| r.manually_stopped = true)?;
        }
        self.event("kill", &record, &[("signal", signal.to_string())]);
        c.shim()
            .kill(signal, false)
            .await
            .map_err(|e| EngineError::internal(format!("kill {}: {e}", c.id)))
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.get(name)?;
        {
            let _op = c.op.lock().await;
            let record = c.record();
            if record.state.status.is_live() {
                c.update(|r| r.manually_stopped = true)?;
                let signal = match signal.filter(|s| !s.is_empty()) {
                    Some(s) => parse_signal(s)?,
                    None => record
                        .config
                        .stop_signal
                        .as_deref()
                        .map(parse_signal)
                        .transpose()?
                        .unwrap_or(15),
                };
                let timeout = timeout.or(record.config.stop_timeout).unwrap_or(10);
                self.stop_locked(&c, signal, timeout).await?;
            }
            c.update(|r| r.manually_stopped = false)?;
            self.start_locked(&c).await?;
        }
        self.event("restart", &c.record(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn pause(self: &Arc<Self>, name: &str, pause: bool) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.op.lock().await;
        let record = c.record();
        match (record.state.status, pause) {
            (Status::Running, true) => {
                c.shim()
                    .pause()
                    .await
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                c.update(|r| r.state.status = Status::Paused)?;
                self.event("pause", &record, &[]);
            }
            (Status::Paused, false) => {
                c.shim()
                    .resume()
                    .await
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                c.update(|r| r.state.status = Status::Running)?;
                self.event("unpause", &record, &[]);
            }
            (Status::Paused, true) => {
                return Err(EngineError::conflict(format!(
                    "Container {} is already paused",
                    c.id
                )));
            }
            (Status::Running, false) => {
                return Err(EngineError::conflict(format!(
                    "Container {} is not paused",
                    c.id
                )));
            }
            _ => return Err(not_running(&c)),
        }
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code once the condition holds.
    pub async fn wait(self: &Arc<Self>, name: &str, condition: WaitCondition) -> Result<i64> {
        let c = self.get(name)?;
        let mut rx = c.subscribe();
        let start = rx.borrow_and_update().clone();
        loop {
            let now = rx.borrow_and_update().clone();
            let done = match condition {
                WaitCondition::NotRunning => !now.running,
                WaitCondition::NextExit => now.exits > start.exits,
                WaitCondition::Removed => now.removed,
            };
            if done {
                return Ok(now.exit_code);
            }
            if rx.changed().await.is_err() {
                return Ok(rx.borrow().exit_code);
            }
        }
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.get(name)?;
        let record = c.record();
        if record.state.status.is_live() || record.state.status == Status::Restarting {
            if !force {
                let what = if record.state.status == Status::Paused {
                    "container is paused and must be unpaused first"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(EngineError::conflict(format!(
                    "cannot remove container \"{}\": {what}",
                    record.name
                )));
            }
            let _op = c.op.lock().await;
            c.update(|r| r.manually_stopped = true)?;
            self.stop_locked(&c, libc_sigkill(), 0).await?;
        }
        self.remove_container(&c, volumes).await
    }

    pub(crate) async fn remove_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        volumes: bool,
    ) -> Result<()> {
        let _op = c.op.lock().await;
        if !self
            .containers
            .read()
            .expect("containers lock")
            .contains_key(&c.id)
        {
            return Ok(());
        }
        c.update_in_memory(|r| r.state.status = Status::Removing);
        self.release_mounts(c);
        let record = c.record();
        let _ = std::fs::remove_dir_all(c.state_dir.path());
        let _ = std::fs::remove_dir_all(self.paths.runtime_root.join(&c.id));
        // The record goes first: from here the container is gone, for this daemon and
        // for the next one (which deletes a container directory without a record). The
        // rest of the directory (the writable layer, the log) is deleted in the
        // background, so the removal (and `run --rm`) does not wait for the filesystem.
        let record_file = c.dir.join(super::RECORD_FILE);
        std::fs::remove_file(&record_file)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| EngineError::internal(format!("remove {}: {e}", record_file.display())))?;
        let dir = c.dir.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(err) = std::fs::remove_dir_all(&dir)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), "delete a removed container's directory: {err}");
            }
        });
        self.containers
            .write()
            .expect("containers lock")
            .remove(&c.id);
        for m in &record.mounts {
            if let Some(name) = &m.name {
                self.volumes.release(name, &c.id);
            }
        }
        if volumes {
            for name in &record.anonymous_volumes {
                if let Err(err) = self.volumes.remove(name, false) {
                    tracing::warn!(volume = %name, "remove anonymous volume: {err}");
                }
            }
        }
        self.forget_execs(&c.id);
        c.lifecycle.send_modify(|l| l.removed = true);
        self.event("destroy", &record, &[]);
        if record.is_microvm() && record.image_in(self.images.store()).is_err() {
            // Its image was deleted (forced) while it existed: the root image can go now.
            let service = self.clone();
            tokio::task::spawn_blocking(move || service.sweep_vm_root_images());
        }
        Ok(())
    }

    /// At daemon start: re-adopts containers whose shims still run, records the exits
    /// that happened while the daemon was away, and starts `always`/`unless-stopped`
    /// containers again.
    pub async fn restore(self: &Arc<Self>) {
        for c in self.all() {
            let record = c.record();
            match record.state.status {
                Status::Running | Status::Paused | Status::Restarting => {
                    if let Some(status) = c.state_dir.read_exit() {
                        self.on_exit(&c, status);
                        continue;
                    }
                    match c.shim().state().await {
                        Ok(state) => {
                            tracing::info!(id = %c.id, pid = state.pid, "re-adopted a running container");
                            let paused = state.status == "paused";
                            let _ = c.update(|r| {
                                r.state.pid = i64::from(state.pid);
                                r.state.status = if paused {
                                    Status::Paused
                                } else {
                                    Status::Running
                                };
                            });
                            let service = self.clone();
                            let container = c.clone();
                            tokio::spawn(async move { service.monitor(container).await });
                            self.start_health_checks(&c);
                        }
                        Err(err) => {
                            let mut status = ExitStatus::now(255, false);
                            status.error = Some(format!("the container's shim is gone: {err}"));
                            self.on_exit(&c, status);
                        }
                    }
                }
                Status::Exited | Status::Created
                    if record.has_been_started && self.should_restart_at_boot(&record) =>
                {
                    let service = self.clone();
                    tokio::spawn(async move {
                        let _op = c.op.lock().await;
                        if let Err(err) = service.start_locked(&c).await {
                            tracing::warn!(id = %c.id, "restart at daemon start: {err}");
                        }
                    });
                }
                // Removals the daemon did not finish: records written before `removing`
                // became memory-only, and exited `--rm` containers.
                Status::Removing => {
                    let _ = self.remove_container(&c, false).await;
                }
                Status::Exited if record.host_config.auto_remove.unwrap_or(false) => {
                    let _ = self.remove_container(&c, true).await;
                }
                Status::Created | Status::Exited if c.state_dir.socket().exists() => {
                    // The daemon died between creating the container's process and
                    // starting it: nobody will start it now. Take it down.
                    if let Ok(state) = c.shim().state().await
                        && state.status == "created"
                    {
                        tracing::info!(id = %c.id, "removing a half-started container's process");
                        let _ = c.shim().kill(libc_sigkill(), true).await;
                        let _ = tokio::time::timeout(Duration::from_secs(5), c.shim().wait()).await;
                    }
                    self.release_mounts(&c);
                }
                _ => {}
            }
        }
    }

    fn should_restart_at_boot(&self, record: &super::record::ContainerRecord) -> bool {
        let name = record
            .host_config
            .restart_policy
            .as_ref()
            .and_then(|p| p.name)
            .unwrap_or(RestartPolicyNameEnum::EMPTY);
        match name {
            RestartPolicyNameEnum::ALWAYS => true,
            RestartPolicyNameEnum::UNLESS_STOPPED => !record.manually_stopped,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(
            parse_signal("bogus").unwrap_err().message,
            "Invalid signal: bogus"
        );
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn wait_conditions_parse() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("x").is_err());
    }
}
