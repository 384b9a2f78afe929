//! `berth create` / `berth container create`, and the create step `run` shares: the cidfile,
//! pulling a missing image (progress on stderr), `POST /containers/create`, warnings.

use anyhow::Result;
use bollard::query_parameters::CreateImageOptions;
use clap::Args as ClapArgs;
use futures::StreamExt;

use super::conn::{Endpoint, daemon_error};
use super::hijack::tty_size;
use super::opts::{ContainerOpts, CreateFlags, CreateRequest, validate_pull};
use super::report;
use crate::commands::image::pull::message;
use crate::commands::image::{registry_auth, with_auth};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};
use crate::format::jsonmessage::Display;
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    #[command(flatten)]
    pub opts: ContainerOpts,
    #[arg(
        value_name = "IMAGE",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

pub async fn run(a: CreateArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.args.len())?;
    validate_pull(&a.flags.pull).map_err(|e| report(ctx, &e))?;
    let req = a
        .opts
        .build(&a.args[0], &a.args[1..])
        .map_err(|e| report(ctx, &e))?;
    let id = create_container(ctx, req, &a.flags, a.opts.cidfile.as_deref()).await?;
    out(&format!("{id}\n"))
}

/// Removes an unwritten cidfile when dropped (docker's `cidFile.Close`).
struct CidFile {
    path: Option<String>,
    written: bool,
}

impl CidFile {
    fn create(path: Option<&str>) -> Result<CidFile, CliError> {
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            return Ok(CidFile {
                path: None,
                written: false,
            });
        };
        if std::path::Path::new(path).exists() {
            return Err(CliError::msg(format!(
                "container ID file found, make sure the other container isn't running or delete {path}"
            )));
        }
        std::fs::File::create(path).map_err(|e| {
            CliError::msg(format!(
                "failed to create the container ID file: open {path}: {}",
                super::parse::io_error_text(&e)
            ))
        })?;
        Ok(CidFile {
            path: Some(path.to_string()),
            written: false,
        })
    }

    fn write(&mut self, id: &str) -> Result<(), CliError> {
        if let Some(p) = &self.path {
            std::fs::write(p, id).map_err(|e| {
                CliError::msg(format!("failed to write the container ID to the file: {e}"))
            })?;
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let (Some(p), false) = (&self.path, self.written) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Pulls `image` with the progress on stderr (or nothing with `-q`).
async fn pull_image(ctx: &Ctx, reference: &Reference, flags: &CreateFlags) -> Result<(), CliError> {
    let client = ctx.client().await?;
    let tagged = reference.clone().with_default_tag();
    let opts = CreateImageOptions {
        from_image: Some(tagged.familiar_name()),
        tag: tagged.digest.clone().or_else(|| tagged.tag.clone()),
        platform: flags.platform.clone().unwrap_or_default().to_lowercase(),
        ..Default::default()
    };
    let docker = with_auth(&client.docker, registry_auth(ctx, &tagged));
    let mut stream = docker.create_image(Some(opts), None, None);
    let is_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let width = rustix::termios::tcgetwinsize(std::io::stderr()).map_or(200, |w| w.ws_col as usize);
    let mut display = Display::new(std::io::stderr(), is_tty, width);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| client.error(e))?;
        if flags.quiet {
            if let Some(e) = info.error_detail.as_ref().and_then(|e| e.message.clone()) {
                return Err(CliError::msg(e));
            }
            continue;
        }
        match display.message(&message(&info)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(CliError::msg(e.message)),
            Err(e) => return Err(CliError::msg(e.to_string())),
        }
    }
    Ok(())
}

/// docker's `createContainer`: returns the new container's ID.
pub async fn create_container(
    ctx: &Ctx,
    mut req: CreateRequest,
    flags: &CreateFlags,
    cidfile: Option<&str>,
) -> Result<String, CliError> {
    let hc = req.body.host_config.clone().unwrap_or_default();
    if hc.oom_kill_disable == Some(true) && hc.memory.unwrap_or(0) == 0 {
        eprintln!(
            "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous."
        );
    }
    for dns in hc.dns.iter().flatten() {
        if dns.starts_with("127.") || dns == "::1" {
            eprintln!("WARNING: Localhost DNS setting (--dns={dns}) may fail in containers.");
            break;
        }
    }
    let mut cid = CidFile::create(cidfile)?;
    let image = req.body.image.clone().unwrap_or_default();
    let named = Reference::parse_normalized(&image).ok();
    if named.is_none() && !is_image_id(&image) {
        Reference::parse_normalized(&image).map_err(CliError::msg)?;
    }
    if flags.pull == "always"
        && let Some(r) = &named
    {
        pull_image(ctx, r, flags).await?;
    }
    let (h, w) = tty_size();
    if let Some(hc) = req.body.host_config.as_mut() {
        hc.console_size = Some(vec![h, w]);
    }
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut query = Vec::new();
    if let Some(n) = flags.name.as_deref().filter(|n| !n.is_empty()) {
        query.push(("name", n.to_string()));
    }
    if let Some(p) = flags.platform.as_deref().filter(|p| !p.is_empty()) {
        query.push(("platform", p.to_lowercase()));
    }
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = format!("/containers/create{}", crate::client::query(&pairs));
    let body = req.to_json();
    let (mut status, mut resp) = ep.call("POST", &path, Some(&body)).await?;
    if status == 404
        && flags.pull == "missing"
        && let Some(r) = &named
    {
        if !flags.quiet {
            eprintln!(
                "Unable to find image '{}' locally",
                r.clone().with_default_tag().familiar()
            );
        }
        pull_image(ctx, r, flags).await?;
        (status, resp) = ep.call("POST", &path, Some(&body)).await?;
    }
    if !(200..300).contains(&status) {
        return Err(daemon_error(&resp));
    }
    #[derive(serde::Deserialize)]
    struct Created {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Warnings", default)]
        warnings: Option<Vec<String>>,
    }
    let created: Created = serde_json::from_slice(&resp)
        .map_err(|e| CliError::msg(format!("error decoding response: {e}")))?;
    for w in created.warnings.iter().flatten() {
        eprintln!("WARNING: {w}");
    }
    cid.write(&created.id)?;
    Ok(created.id)
}

fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}
