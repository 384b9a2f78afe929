//! `berth-registry serve`: configuration file plus flags → storage, authoriser, router,
//! listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use berth_registry_server::auth::{self, AuthConfig, AuthSetup};
use berth_registry_server::config::{Config, Overrides};
use berth_registry_server::server::{self, RegistryState};
use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file; the flags below override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address (default 0.0.0.0:5000).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Data root: filesystem storage and the authoriser's state.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// TLS certificate chain (PEM); serves HTTPS together with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Reads the configuration file (if any) and applies the flags.
pub fn load_config(path: Option<&Path>, flags: Overrides) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.apply(flags)?;
    Ok(config)
}

/// The authoriser and its routes (the token endpoint), as the `[auth]` section asks.
/// `listen` and `tls` give the default token realm.
pub fn authorizer(
    config: &Config,
    root: &Path,
    listen: SocketAddr,
    tls: bool,
) -> anyhow::Result<AuthSetup> {
    let auth_config: AuthConfig = config.auth_section()?;
    let realm = auth_config.realm_or(&listen.to_string(), tls);
    auth::from_config(root, &auth_config, &realm).context("setting up authorisation")
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let flags = Overrides {
        addr: args.addr,
        root: args.root,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    let config = load_config(args.config.as_deref(), flags)?;
    let root = config.root();
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let storage = config.storage_driver()?;
    let tls = match &config.tls {
        Some(t) => Some(server::tls_config(&t.cert, &t.key)?),
        None => None,
    };
    let addr = config.addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let auth = authorizer(&config, &root, local, tls.is_some())?;
    let state = Arc::new(RegistryState::new(storage.clone(), auth.authorizer));
    let app = server::router(state).merge(auth.routes);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(storage = %storage.describe(), "berth-registry listening on {scheme}://{local}");
    server::serve(listener, app, tls, shutdown_signal()).await?;
    tracing::info!("berth-registry stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
