//! Load for bench/registry.sh. It speaks the Distribution API directly, so every registry
//! under test gets the same client.
//!
//! - `push`: uploads an image of L layers (deterministic pseudo-random bytes, made and
//!   hashed before timing starts), N uploads at a time, then its config and manifest;
//! - `pull`: downloads every blob of that image, N at a time, and checks each digest;
//! - `manifest`: N concurrent clients GET the manifest K times each; prints p50/p99.
//!
//! Prints one JSON object with the timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
struct Args {
    /// push, pull or manifest
    mode: String,
    /// Registry base URL, e.g. http://127.0.0.1:5000
    #[arg(long)]
    url: String,
    #[arg(long)]
    repo: String,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value_t = 64)]
    layers: usize,
    /// Bytes per layer
    #[arg(long, default_value_t = 8_000_000)]
    layer_size: usize,
    /// Requests per client in manifest mode
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// Pull: count bytes without hashing them, so the client's SHA-256 does not compete
    /// with the server for the same cores
    #[arg(long)]
    no_verify: bool,
}

fn layer(i: usize, size: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut v = Vec::with_capacity(size + 8);
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

struct Image {
    layers: Vec<(String, usize)>,
    config: Bytes,
    manifest: Bytes,
}

fn image(args: &Args) -> Image {
    let layers: Vec<(String, usize)> = (0..args.layers)
        .map(|i| (digest(&layer(i, args.layer_size)), args.layer_size))
        .collect();
    let config = Bytes::from(
        serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids": layers.iter().map(|l| &l.0).collect::<Vec<_>>()}})
            .to_string(),
    );
    let manifest = Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": layers.iter().map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})).collect::<Vec<_>>(),
        })
        .to_string(),
    );
    Image {
        layers,
        config,
        manifest,
    }
}

async fn upload(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    data: Bytes,
    d: &str,
) -> Result<()> {
    let resp = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await?;
    if resp.status().as_u16() != 202 {
        bail!("upload start: {}", resp.status());
    }
    let loc = resp
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let resp = http
        .put(format!("{loc}{sep}digest={d}"))
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!(
            "upload finish: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

async fn push(http: reqwest::Client, args: Arc<Args>, img: Arc<Image>) -> Result<f64> {
    // Payloads and their digests are made before the clock starts: the client's own work
    // must not compete with the server for the cores being measured.
    let payloads: Vec<(Bytes, String)> = (0..args.layers)
        .map(|i| (layer(i, args.layer_size), img.layers[i].0.clone()))
        .collect();
    let t0 = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(payloads)
        .map(|(data, d)| {
            let (http, args) = (http.clone(), args.clone());
            async move { upload(&http, &args.url, &args.repo, data, &d).await }
        })
        .buffer_unordered(args.clients)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>>>()?;
    upload(
        &http,
        &args.url,
        &args.repo,
        img.config.clone(),
        &digest(&img.config),
    )
    .await?;
    let resp = http
        .put(format!("{}/v2/{}/manifests/latest", args.url, args.repo))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(img.manifest.clone())
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!(
            "manifest put: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(t0.elapsed().as_secs_f64())
}

async fn pull(http: reqwest::Client, args: Arc<Args>, img: Arc<Image>) -> Result<f64> {
    let t0 = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(img.layers.clone())
        .map(|(d, size)| {
            let (http, args) = (http.clone(), args.clone());
            async move {
                let resp = http
                    .get(format!("{}/v2/{}/blobs/{d}", args.url, args.repo))
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("blob get: {}", resp.status());
                }
                let mut h = Sha256::new();
                let mut n = 0;
                let mut s = resp.bytes_stream();
                while let Some(chunk) = s.next().await {
                    let chunk = chunk?;
                    n += chunk.len();
                    if !args.no_verify {
                        h.update(&chunk);
                    }
                }
                if n != size
                    || (!args.no_verify && format!("sha256:{}", hex::encode(h.finalize())) != d)
                {
                    bail!("blob {d} corrupt");
                }
                Ok(())
            }
        })
        .buffer_unordered(args.clients)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(t0.elapsed().as_secs_f64())
}

async fn manifest_latency(http: reqwest::Client, args: Arc<Args>) -> Result<(f64, f64)> {
    let url = format!("{}/v2/{}/manifests/latest", args.url, args.repo);
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let (http, url, n) = (http.clone(), url.clone(), args.requests);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    let resp = http
                        .get(&url)
                        .header("accept", "application/vnd.oci.image.manifest.v1+json")
                        .send()
                        .await?;
                    if !resp.status().is_success() {
                        bail!("manifest get: {}", resp.status());
                    }
                    resp.bytes().await?;
                    lat.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    Ok((pct(0.50), pct(0.99)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Arc::new(Args::parse());
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()?;
    let img = Arc::new(image(&args));
    let total_mb = (args.layers * args.layer_size) as f64 / 1e6;
    match args.mode.as_str() {
        "push" => {
            let s = push(http, args.clone(), img).await?;
            println!(
                "{}",
                serde_json::json!({"mode":"push","clients":args.clients,"seconds":s,"mb_per_s": total_mb / s})
            );
        }
        "pull" => {
            let s = pull(http, args.clone(), img).await?;
            println!(
                "{}",
                serde_json::json!({"mode":"pull","clients":args.clients,"seconds":s,"mb_per_s": total_mb / s})
            );
        }
        "manifest" => {
            let (p50, p99) = manifest_latency(http, args.clone()).await?;
            println!(
                "{}",
                serde_json::json!({"mode":"manifest","clients":args.clients,"p50_ms":p50,"p99_ms":p99})
            );
        }
        other => bail!("unknown mode {other}"),
    }
    Ok(())
}
