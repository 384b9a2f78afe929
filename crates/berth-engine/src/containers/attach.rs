//! Attach and exec streams. The route upgrades the HTTP connection and hands it to
//! [`pump`], which copies the shim's frames to the client (raw with a TTY, Docker's
//! multiplexed framing without) and the client's bytes to the process's stdin,
//! watching for the detach keys.

use std::sync::{Arc, Mutex};

use berth_shim::protocol::{AttachRequest, ExecRequest};
use berth_shim::{ShimClient, ShimStream, StreamKind};
use bollard_stubs::models::{ExecInspectResponse, ProcessConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

use super::record::Status;
use super::{ContainerService, rootfs};
use crate::error::{EngineError, Result};

/// `POST /containers/{id}/attach` query.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Option<String>,
}

/// An attach ready to be pumped: the shim stream now, or once the container starts.
pub struct AttachStream {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
    pending: Pending,
    /// Log lines to replay first (`logs=1`), already framed for the client.
    pub replay: Vec<u8>,
}

enum Pending {
    /// The container runs: connect to its shim.
    Now {
        client: ShimClient,
        request: AttachRequest,
    },
    Waiting {
        waiter: oneshot::Receiver<(ShimClient, oneshot::Sender<()>)>,
        request: AttachRequest,
    },
    /// Nothing to stream (`stream=0`).
    None,
}

impl AttachStream {
    /// The shim stream, waiting for the container to start if need be.
    pub async fn connect(self) -> Result<Option<(ShimStream, bool, bool, Vec<u8>)>> {
        let stream = match self.pending {
            Pending::Now { client, request } => client
                .attach(request)
                .await
                .map_err(|e| EngineError::internal(format!("attach: {e}")))?,
            Pending::None => return Ok(None),
            Pending::Waiting { waiter, request } => {
                let (client, ack) = waiter
                    .await
                    .map_err(|_| EngineError::internal("the container was removed"))?;
                let stream = client.attach(request).await;
                let _ = ack.send(());
                stream.map_err(|e| EngineError::internal(format!("attach: {e}")))?
            }
        };
        Ok(Some((stream, self.tty, self.stdin, self.detach_keys)))
    }
}

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// Parses `ctrl-p,ctrl-q`-style detach keys.
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>> {
    let mut keys = Vec::new();
    for key in text.split(',') {
        let key = key.trim();
        if let Some(ctrl) = key.strip_prefix("ctrl-") {
            let c = match ctrl {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_lowercase() => {
                    c.as_bytes()[0] - b'a' + 1
                }
                _ => {
                    return Err(EngineError::invalid(format!(
                        "Invalid escape keys ({text}) provided"
                    )));
                }
            };
            keys.push(c);
        } else if key.len() == 1 {
            keys.push(key.as_bytes()[0]);
        } else {
            return Err(EngineError::invalid(format!(
                "Invalid escape keys ({text}) provided"
            )));
        }
    }
    Ok(keys)
}

/// Copies between the client connection and the shim stream until the process's output
/// ends, the client detaches, or the client goes away. Returns the exit code when the
/// stream ended with one.
pub async fn pump<C>(
    client: C,
    stream: ShimStream,
    tty: bool,
    stdin: bool,
    detach_keys: Vec<u8>,
    replay: Vec<u8>,
) -> Option<i32>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let ShimStream {
        mut frames,
        stdin: mut shim_stdin,
    } = stream;
    let (detached_tx, mut detached_rx) = oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        if !stdin {
            // Keep reading so a closed client is noticed, but feed nothing.
            let mut sink = [0u8; 1024];
            while matches!(client_read.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut out = Vec::with_capacity(n);
            for &b in &buf[..n] {
                if !detach_keys.is_empty() && b == detach_keys[matched] {
                    matched += 1;
                    if matched == detach_keys.len() {
                        let _ = shim_stdin.write_all(&out).await;
                        let _ = detached_tx.send(());
                        return;
                    }
                    continue;
                }
                if matched > 0 {
                    out.extend_from_slice(&detach_keys[..matched]);
                    matched = 0;
                }
                out.push(b);
            }
            if shim_stdin.write_all(&out).await.is_err() {
                // The process is gone: read the client's input to its end.
                while matches!(client_read.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
        }
        let _ = shim_stdin.shutdown().await;
    });
    if !replay.is_empty() && client_write.write_all(&replay).await.is_err() {
        input.abort();
        return None;
    }
    let mut exit = None;
    let mut input_done = false;
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Ok(Some(frame)) => {
                    if frame.stream == StreamKind::Exit {
                        exit = frame.exit_status().map(|s| s.exit_code);
                        break;
                    }
                    let bytes = if tty { frame.payload.clone() } else { frame.encode() };
                    if client_write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            detached = &mut detached_rx, if !input_done => {
                // A dropped sender only means the client ended its input.
                if detached.is_ok() {
                    break;
                }
                input_done = true;
            }
        }
    }
    let _ = client_write.flush().await;
    let _ = client_write.shutdown().await;
    // Let the client close its side first: closing with its input unread would reset
    // the connection ("connection reset by peer" in the docker CLI).
    // (In the background: the exit code is recorded by the caller right away.)
    tokio::spawn(async move {
        let mut input = input;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut input)
            .await
            .is_err()
        {
            input.abort();
        }
    });
    exit
}

/// Runc's check of the exec'd command, made before the shim is asked.
fn check_exec_command(
    root: &std::path::Path,
    process: &serde_json::Value,
) -> Option<rootfs::ExecProblem> {
    let argv0 = process["args"][0].as_str()?;
    let env: Vec<String> = serde_json::from_value(process["env"].clone()).unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let cwd = process["cwd"].as_str().unwrap_or("/");
    rootfs::check_executable(root, argv0, path, cwd).err()
}

/// One `docker exec` instance.
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    done: watch::Sender<bool>,
}

#[derive(Debug, Clone, Default)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    pid: i64,
}

/// `POST /containers/{id}/exec` body.
pub type ExecConfig = bollard_stubs::models::ExecConfig;

/// What `start_exec` hands the route.
pub enum ExecStart {
    Detached,
    /// The command cannot run: the message goes to the client, the code to inspect.
    Failed {
        message: String,
        tty: bool,
    },
    Attached {
        stream: ShimStream,
        tty: bool,
        stdin: bool,
        detach_keys: Vec<u8>,
        exec: Arc<Exec>,
    },
}

impl ContainerService {
    /// `POST /containers/{id}/attach`.
    pub fn attach(&self, name: &str, opts: AttachOptions) -> Result<AttachStream> {
        let c = self.get(name)?;
        let record = c.record();
        let tty = record.config.tty.unwrap_or(false);
        let detach_keys = match opts.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            Some(keys) => parse_detach_keys(keys)?,
            None => DEFAULT_DETACH_KEYS.to_vec(),
        };
        let request = AttachRequest {
            stdin: opts.stdin && record.config.open_stdin.unwrap_or(false),
            stdout: opts.stdout,
            stderr: opts.stderr,
            close_stdin: record.config.stdin_once.unwrap_or(false),
        };
        let replay = if opts.logs {
            self.replay_logs(&record, opts.stdout, opts.stderr, tty)?
        } else {
            Vec::new()
        };
        let pending = if !opts.stream {
            Pending::None
        } else {
            match record.state.status {
                Status::Running | Status::Paused => Pending::Now {
                    client: c.shim(),
                    request: request.clone(),
                },
                Status::Created | Status::Restarting | Status::Exited => {
                    // The CLI attaches before it starts: wait for the process.
                    let (tx, rx) = oneshot::channel();
                    c.attach_waiters.lock().expect("waiters").push(tx);
                    Pending::Waiting {
                        waiter: rx,
                        request: request.clone(),
                    }
                }
                _ => Pending::None,
            }
        };
        self.event("attach", &record, &[]);
        Ok(AttachStream {
            tty,
            stdin: request.stdin,
            detach_keys,
            pending,
            replay,
        })
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let c = self.get(name)?;
        if !c.record().state.status.is_live() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        c.shim()
            .resize(None, height, width)
            .await
            .map_err(|e| EngineError::internal(e.to_string()))
    }

    /// `POST /containers/{id}/exec`: records an exec instance; returns its ID.
    pub fn create_exec(&self, name: &str, config: ExecConfig) -> Result<String> {
        let c = self.get(name)?;
        let record = c.record();
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                )));
            }
            Status::Restarting => {
                return Err(EngineError::conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    c.id
                )));
            }
            _ => {
                return Err(EngineError::conflict(format!(
                    "container {} is not running",
                    c.id
                )));
            }
        }
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let id = {
            use rand::Rng;
            let bytes: [u8; 32] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            done: watch::channel(false).0,
        });
        self.execs
            .lock()
            .expect("execs lock")
            .insert(id.clone(), exec);
        self.event(
            &format!("exec_create: {cmd}"),
            &record,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("No such exec instance: {id}")))
    }

    /// The OCI process for an exec: the container's, with the exec's command, env,
    /// working directory, user, terminal and privileges.
    fn exec_process(
        &self,
        c: &super::Container,
        config: &ExecConfig,
        tty: bool,
    ) -> Result<serde_json::Value> {
        let record = c.record();
        if record.is_microvm() {
            return Ok(super::microvm::vm_exec_process(&record, config, tty));
        }
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(c.state_dir.spec())
                .map_err(|e| EngineError::internal(format!("read the container's spec: {e}")))?,
        )
        .map_err(|e| EngineError::internal(e.to_string()))?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(config.cmd.clone().unwrap_or_default());
        process["terminal"] = serde_json::json!(tty);
        if let Some(size) = &config.console_size
            && size.len() == 2
        {
            process["consoleSize"] = serde_json::json!({"height": size[0], "width": size[1]});
        } else if let Some(obj) = process.as_object_mut() {
            obj.remove("consoleSize");
        }
        let mut env: Vec<String> =
            serde_json::from_value(process["env"].clone()).unwrap_or_default();
        for entry in config.env.iter().flatten() {
            let key = entry.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(entry.clone());
        }
        if let Some(dir) = config.working_dir.as_deref().filter(|d| !d.is_empty()) {
            process["cwd"] = serde_json::json!(dir);
        }
        let root = c.dir.join("rootfs");
        // Read only when a user is resolved or HOME is missing, and then once.
        let passwd = std::cell::OnceCell::new();
        let passwd = || {
            passwd
                .get_or_init(|| {
                    rootfs::read_in_root(&root, "/etc/passwd", 16 << 20)
                        .ok()
                        .flatten()
                })
                .as_deref()
        };
        if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
            let group = rootfs::read_in_root(&root, "/etc/group", 16 << 20)
                .ok()
                .flatten();
            let group_add = c.record().host_config.group_add.unwrap_or_default();
            let resolved =
                berth_runtime::resolve_user(user, &group_add, passwd(), group.as_deref())
                    .map_err(|e| EngineError::invalid(e.to_string()))?;
            process["user"] = serde_json::json!({
                "uid": resolved.uid,
                "gid": resolved.gid,
                "additionalGids": resolved.additional_gids,
            });
        }
        // runc sets HOME from the image's passwd when the environment has none; given
        // here, the runtime never looks it up inside the container (libcontainer's exec
        // would ask glibc's NSS there).
        if !env
            .iter()
            .any(|e| e.strip_prefix("HOME=").is_some_and(|home| !home.is_empty()))
        {
            let uid = process["user"]["uid"].as_u64().unwrap_or(0) as u32;
            let home = berth_runtime::home_dir(passwd().unwrap_or_default(), uid);
            env.retain(|e| !e.starts_with("HOME="));
            env.push(format!("HOME={home}"));
        }
        process["env"] = serde_json::json!(env);
        if config.privileged.unwrap_or(false) {
            let last = self.facts.last_cap as usize;
            let all: Vec<&str> = berth_runtime::ALL_CAPABILITIES
                .iter()
                .take(last + 1)
                .copied()
                .collect();
            process["capabilities"] = serde_json::json!({
                "bounding": all, "effective": all, "permitted": all,
            });
            super::start::limit_capabilities(&mut process["capabilities"]);
        }
        Ok(process)
    }

    /// `POST /exec/{id}/start`.
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        tty: Option<bool>,
    ) -> Result<ExecStart> {
        let exec = self.exec(id)?;
        {
            let mut state = exec.state.lock().expect("exec lock");
            if state.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            state.started = true;
        }
        let c = self.get(&exec.container_id)?;
        if c.record().state.status != Status::Running {
            return Err(EngineError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let tty = tty.unwrap_or(false) || exec.config.tty.unwrap_or(false);
        let process = self.exec_process(&c, &exec.config, tty)?;
        let vm_user = super::microvm::vm_exec_user(&c.record(), &exec.config);
        if vm_user.is_none()
            && let Some(problem) = check_exec_command(&c.dir.join("rootfs"), &process)
        {
            let message = problem.message().replace(
                "failed to create task for container: OCI runtime create failed",
                "OCI runtime exec failed: exec failed",
            );
            self.finish_exec(&exec, Some(problem.exit_code() as i32));
            return Ok(ExecStart::Failed { message, tty });
        }
        let stdin = exec.config.attach_stdin.unwrap_or(false) && !detach;
        let (pid, stream) = c
            .shim()
            .exec(ExecRequest {
                exec_id: exec.id.clone(),
                process,
                stdin,
                user: vm_user,
            })
            .await
            .map_err(|e| match e {
                berth_shim::ShimError::Refused(m) => EngineError::invalid(m),
                other => EngineError::internal(other.to_string()),
            })?;
        {
            let mut state = exec.state.lock().expect("exec lock");
            state.running = true;
            state.pid = i64::from(pid);
        }
        let cmd = exec.config.cmd.clone().unwrap_or_default().join(" ");
        self.event(
            &format!("exec_start: {cmd}"),
            &c.record(),
            &[("execID", exec.id.clone())],
        );
        if detach {
            let service = self.clone();
            let exec2 = exec.clone();
            tokio::spawn(async move {
                let mut frames = stream.frames;
                let mut code = None;
                while let Ok(Some(frame)) = frames.next().await {
                    if frame.stream == StreamKind::Exit {
                        code = frame.exit_status().map(|s| s.exit_code);
                    }
                }
                service.finish_exec(&exec2, code);
            });
            return Ok(ExecStart::Detached);
        }
        let detach_keys = match exec.config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            Some(keys) => parse_detach_keys(keys)?,
            None => DEFAULT_DETACH_KEYS.to_vec(),
        };
        Ok(ExecStart::Attached {
            stream,
            tty,
            stdin,
            detach_keys,
            exec,
        })
    }

    /// Records how an exec ended (the route calls this after pumping).
    pub fn finish_exec(&self, exec: &Exec, code: Option<i32>) {
        let code = i64::from(code.unwrap_or(126));
        {
            let mut state = exec.state.lock().expect("exec lock");
            state.running = false;
            state.exit_code = Some(code);
        }
        exec.done.send_replace(true);
        if let Ok(c) = self.get(&exec.container_id) {
            self.event(
                "exec_die",
                &c.record(),
                &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
            );
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect_exec(&self, id: &str) -> Result<ExecInspectResponse> {
        let exec = self.exec(id)?;
        let state = exec.state.lock().expect("exec lock").clone();
        let cmd = exec.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(exec.config.detach_keys.clone().unwrap_or_default()),
            id: Some(exec.id.clone()),
            running: Some(state.running),
            exit_code: state.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(exec.config.privileged.unwrap_or(false)),
                user: Some(exec.config.user.clone().unwrap_or_default()),
                tty: Some(exec.config.tty.unwrap_or(false)),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(exec.config.attach_stdin.unwrap_or(false)),
            open_stderr: Some(exec.config.attach_stderr.unwrap_or(false)),
            open_stdout: Some(exec.config.attach_stdout.unwrap_or(false)),
            container_id: Some(exec.container_id.clone()),
            pid: Some(state.pid),
        })
    }

    /// `POST /exec/{id}/resize`.
    pub async fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.exec(id)?;
        let c = self.get(&exec.container_id)?;
        c.shim()
            .resize(Some(exec.id.clone()), height, width)
            .await
            .map_err(|e| EngineError::internal(e.to_string()))
    }

    /// Runs a command in a running container and collects its output (health checks).
    pub(crate) async fn exec_capture(
        self: &Arc<Self>,
        c: &super::Container,
        cmd: Vec<String>,
        limit: usize,
    ) -> Result<(i32, String)> {
        let config = ExecConfig {
            cmd: Some(cmd),
            ..Default::default()
        };
        let process = self.exec_process(c, &config, false)?;
        let user = super::microvm::vm_exec_user(&c.record(), &config);
        let exec_id = format!("health-{}", rand::random::<u32>());
        let (_, stream) = c
            .shim()
            .exec(ExecRequest {
                exec_id,
                process,
                stdin: false,
                user,
            })
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let mut frames = stream.frames;
        let mut output = Vec::new();
        let mut code = 126;
        while let Ok(Some(frame)) = frames.next().await {
            if frame.stream == StreamKind::Exit {
                code = frame.exit_status().map_or(126, |s| s.exit_code);
            } else if output.len() < limit {
                output.extend_from_slice(
                    &frame.payload[..frame.payload.len().min(limit - output.len())],
                );
            }
        }
        Ok((code, String::from_utf8_lossy(&output).into_owned()))
    }

    /// Execs of a container, for inspect's `ExecIDs`.
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        self.execs
            .lock()
            .expect("execs lock")
            .values()
            .filter(|e| {
                e.container_id == container_id && e.state.lock().expect("exec lock").running
            })
            .map(|e| e.id.clone())
            .collect()
    }

    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container_id != container_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }
}
