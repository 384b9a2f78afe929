//! `berth tag SOURCE TARGET`.

use anyhow::Result;
use bollard::query_parameters::TagImageOptions;
use clap::Args as ClapArgs;

use crate::commands::Ctx;
use crate::errors::{Args, CliError};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct TagArgs {
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// The `repo` and `tag` query of `POST /images/{source}/tag`, checked like docker's client.
pub fn target(source: &str, target: &str) -> Result<(String, String), CliError> {
    if let Err(e) = Reference::parse_normalized(source) {
        // Image IDs are valid sources too.
        if !source.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
            && !source.starts_with("sha256:")
        {
            return Err(CliError::msg(format!(
                "Error parsing reference: {source:?} is not a valid repository/tag: {e}"
            )));
        }
    }
    let r = Reference::parse_normalized(target).map_err(|e| {
        CliError::msg(format!(
            "Error parsing reference: {target:?} is not a valid repository/tag: {e}"
        ))
    })?;
    if r.digest.is_some() {
        return Err(CliError::msg(
            "refusing to create a tag with a digest reference",
        ));
    }
    let r = r.with_default_tag();
    Ok((r.familiar_name(), r.tag.unwrap_or_default()))
}

pub async fn run(a: TagArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(2), a.images.len())?;
    let (repo, tag) = target(&a.images[0], &a.images[1])?;
    let client = ctx.client().await?;
    let opts = TagImageOptions {
        repo: Some(repo),
        tag: Some(tag),
    };
    client
        .docker
        .tag_image(&a.images[0], Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            target("busybox", "my/bb").unwrap(),
            ("my/bb".into(), "latest".into())
        );
        assert_eq!(
            target("busybox", "localhost:5000/x:1").unwrap(),
            ("localhost:5000/x".into(), "1".into())
        );
        assert_eq!(
            target("76b8ecf5aa0a", "docker.io/library/y:2").unwrap(),
            ("y".into(), "2".into())
        );
        assert!(
            target("busybox", "Bad")
                .unwrap_err()
                .message
                .contains("must be lowercase")
        );
        let d = "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            target("busybox", d).unwrap_err().message,
            "refusing to create a tag with a digest reference"
        );
    }
}
