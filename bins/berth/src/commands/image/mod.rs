//! `berth image …` and the top-level shortcuts (`images`, `pull`, `push`, `rmi`, …).

pub mod history;
pub mod import;
pub mod inspect;
pub mod list;
pub mod load;
pub mod prune;
pub mod pull;
pub mod push;
pub mod remove;
pub mod save;
pub mod tag;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;
use crate::config_file::{AuthConfig, encode_registry_auth};
use crate::reference::Reference;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show the history of an image
    #[command(override_usage = "[OPTIONS] IMAGE")]
    History(history::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    #[command(override_usage = "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]")]
    Import(import::ImportArgs),
    /// Display detailed information on one or more images
    #[command(override_usage = "[OPTIONS] IMAGE [IMAGE...]")]
    Inspect(inspect::InspectArgs),
    /// Load an image from a tar archive or STDIN
    #[command(override_usage = "[OPTIONS]")]
    Load(load::LoadArgs),
    /// List images
    #[command(override_usage = "[OPTIONS] [REPOSITORY[:TAG]]", alias = "list")]
    Ls(list::ListArgs),
    /// Remove unused images
    #[command(override_usage = "[OPTIONS]")]
    Prune(prune::PruneArgs),
    /// Download an image from a registry
    #[command(override_usage = "[OPTIONS] NAME[:TAG|@DIGEST]")]
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    #[command(override_usage = "[OPTIONS] NAME[:TAG]")]
    Push(push::PushArgs),
    /// Remove one or more images
    #[command(
        override_usage = "[OPTIONS] IMAGE [IMAGE...]",
        alias = "remove",
        alias = "rmi"
    )]
    Rm(remove::RemoveArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    #[command(override_usage = "[OPTIONS] IMAGE [IMAGE...]")]
    Save(save::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    #[command(override_usage = "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")]
    Tag(tag::TagArgs),
}

pub async fn run(cmd: ImageCommand, ctx: &Ctx) -> Result<()> {
    match cmd {
        ImageCommand::History(a) => history::run(a, ctx).await,
        ImageCommand::Import(a) => import::run(a, ctx).await,
        ImageCommand::Inspect(a) => inspect::run(a, ctx).await,
        ImageCommand::Load(a) => load::run(a, ctx).await,
        ImageCommand::Ls(a) => list::run(a, ctx).await,
        ImageCommand::Prune(a) => prune::run(a, ctx).await,
        ImageCommand::Pull(a) => pull::run(a, ctx).await,
        ImageCommand::Push(a) => push::run(a, ctx).await,
        ImageCommand::Rm(a) => remove::run(a, ctx).await,
        ImageCommand::Save(a) => save::run(a, ctx).await,
        ImageCommand::Tag(a) => tag::run(a, ctx).await,
    }
}

/// The `X-Registry-Auth` value for an image's registry, from config.json or a helper; empty
/// credentials (`{}`) when none are stored or they cannot be read.
pub fn registry_auth(ctx: &Ctx, reference: &Reference) -> String {
    let key = reference.auth_key();
    let auth = match ctx.config().and_then(|c| c.get_auth(&key)) {
        Ok(auth) => auth,
        Err(e) => {
            tracing::debug!("reading credentials for {key}: {e:#}");
            AuthConfig::default()
        }
    };
    encode_registry_auth(&auth)
}

/// Sends the header on every request of a bollard client (bollard's own encoding is not the
/// URL-safe base64 the daemon decodes).
pub fn with_auth(docker: &bollard::Docker, auth: String) -> bollard::Docker {
    docker.clone().with_request_modifier(move |mut req| {
        if let Ok(v) = http::HeaderValue::from_str(&auth) {
            req.headers_mut().insert("X-Registry-Auth", v);
        }
        req
    })
}
