//! `berth login [SERVER]`: checks the credentials with the daemon (`POST /auth`), then stores
//! them (or the identity token the registry returned) like docker.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Result;
use clap::Args as ClapArgs;
use http::Method;

use crate::client::Client;
use crate::commands::{Ctx, out};
use crate::config_file::AuthConfig;
use crate::errors::{Args, CliError};
use crate::reference::{INDEX_SERVER, convert_to_hostname};

#[derive(ClapArgs, Debug)]
pub struct LoginArgs {
    /// Password or Personal Access Token (PAT)
    #[arg(short, long, value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Username
    #[arg(short, long, value_name = "string")]
    pub username: Option<String>,
    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
}

/// The address credentials are stored under: Docker Hub's index URL, else the hostname.
pub fn server_address(arg: Option<&str>) -> String {
    match arg {
        Some(s) if !s.is_empty() && s != "docker.io" => convert_to_hostname(s),
        _ => INDEX_SERVER.to_string(),
    }
}

#[derive(serde::Deserialize, Default)]
struct AuthResponse {
    #[serde(default, rename = "IdentityToken")]
    identity_token: String,
}

async fn authenticate(client: &Client, auth: &AuthConfig) -> Result<String, CliError> {
    let body = serde_json::to_vec(auth).map_err(|e| CliError::msg(e.to_string()))?;
    let resp = client
        .raw(Method::POST, "/auth", &[], Some(body.into()))
        .await?;
    let parsed: AuthResponse = serde_json::from_slice(&resp).unwrap_or_default();
    Ok(parsed.identity_token)
}

fn prompt(label: &str) -> Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Reads a password with echo off.
fn prompt_password(label: &str) -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(attrs) = &saved {
        let mut quiet = attrs.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
    }
    let result = prompt(label);
    if let Some(attrs) = &saved {
        let _ = tcsetattr(&stdin, OptionalActions::Now, attrs);
    }
    eprintln!();
    result
}

pub async fn run(a: LoginArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Max(1), a.server.len())?;
    let mut password = a.password.clone().unwrap_or_default();
    let mut username = a.username.clone().unwrap_or_default();
    if !password.is_empty() && a.password_stdin {
        return Err(CliError::msg(
            "conflicting options: cannot specify both --password and --password-stdin",
        )
        .into());
    }
    if a.password_stdin && username.is_empty() {
        return Err(
            CliError::msg("the --password-stdin option requires --username to be set").into(),
        );
    }
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        password = text.trim_end_matches(['\n', '\r']).to_string();
    }
    let server = server_address(a.server.first().map(String::as_str));
    let client = ctx.client().await?;
    let mut config = ctx.config()?;

    if username.is_empty() && password.is_empty() {
        let stored = config.get_auth(&server).unwrap_or_default();
        if !stored.is_empty() {
            eprint!(
                "Authenticating with existing credentials... [Username: {}]\n\n \
                 Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n\n",
                stored.username
            );
            match authenticate(client, &stored).await {
                Ok(_) => return out("Login Succeeded\n"),
                Err(e) => eprintln!("Login did not succeed, error: {}", e.message),
            }
        }
    }
    if username.is_empty() || password.is_empty() {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::msg(
                "Error: Cannot perform an interactive login from a non TTY device",
            )
            .into());
        }
        if username.is_empty() {
            let previous = config
                .get_auth(&server)
                .map(|a| a.username)
                .unwrap_or_default();
            let label = if previous.is_empty() {
                "Username: ".to_string()
            } else {
                format!("Username ({previous}): ")
            };
            username = prompt(&label)?;
            if username.is_empty() {
                username = previous;
            }
            if username.is_empty() {
                return Err(CliError::msg("Error: Non-null Username Required").into());
            }
        }
        if password.is_empty() {
            password = prompt_password("Password: ")?;
            if password.is_empty() {
                return Err(CliError::msg("Error: Password Required").into());
            }
        }
    }
    let auth = AuthConfig {
        username,
        password,
        serveraddress: server,
        ..Default::default()
    };
    let token = authenticate(client, &auth).await?;
    finish(ctx, &mut config, auth, token)
}

fn finish(
    ctx: &Ctx,
    config: &mut crate::config_file::ConfigFile,
    mut auth: AuthConfig,
    token: String,
) -> Result<()> {
    if !token.is_empty() {
        auth.password.clear();
        auth.identitytoken = token;
    }
    let server = auth.serveraddress.clone();
    config
        .store_auth(&auth)
        .map_err(|e| CliError::msg(format!("Error saving credentials: {e:#}")))?;
    if !config.uses_helper(&server) {
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n",
            ctx.config_dir.join("config.json").display()
        );
    }
    out("Login Succeeded\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(server_address(None), INDEX_SERVER);
        assert_eq!(server_address(Some("docker.io")), INDEX_SERVER);
        assert_eq!(server_address(Some("https://reg:5000/v2/")), "reg:5000");
        assert_eq!(server_address(Some("localhost:5000")), "localhost:5000");
    }
}
