//! Helpers shared by the component tests: fake registries served by axum on 127.0.0.1.

#![allow(dead_code)]

use std::net::SocketAddr;

use berth_distribution::{ClientConfig, RegistryClient};
use berth_image::Reference;
use bytes::Bytes;
use futures::StreamExt;

/// An axum app on a free 127.0.0.1 port, stopped on drop.
pub struct Fake {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    pub async fn start(app: axum::Router) -> Fake {
        Fake::start_with(|_| app).await
    }

    /// Like `start`, for apps that need their own address (a token realm, a redirect).
    pub async fn start_with(app: impl FnOnce(SocketAddr) -> axum::Router) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a fake");
        let addr = listener.local_addr().expect("fake address");
        let app = app(addr);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serving a fake");
        });
        Fake { addr, task }
    }

    /// `127.0.0.1:PORT/name`.
    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse_normalized(&format!("{}/{name}", self.addr)).expect("test reference")
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn client() -> RegistryClient {
    RegistryClient::new(ClientConfig::default()).expect("client")
}

/// Reads a whole blob stream; the first error ends it.
pub async fn collect(
    mut s: futures::stream::BoxStream<
        'static,
        Result<Bytes, berth_distribution::DistributionError>,
    >,
) -> Result<Vec<u8>, berth_distribution::DistributionError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// A spec error body.
pub fn error_json(code: &str, message: &str) -> String {
    format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#)
}
