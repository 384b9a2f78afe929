//! The client against a real registry (Debian's docker-registry, CNCF distribution 2.8) on
//! 127.0.0.1, filled with images the tests build.

mod common;

use berth_distribution::testutil::{Compression, Format, TestImage, TestIndex, TestRegistry};
use berth_distribution::{ClientConfig, ErrorKind, Platform, RegistryClient, media_types};
use common::{client, collect};

fn platform(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

fn image_for(format: Format, p: &str) -> TestImage {
    let content = format!("built for {p}");
    TestImage::builder(format)
        .platform(platform(p))
        .layer(
            Compression::Gzip,
            &[("etc/", b""), ("etc/platform", content.as_bytes())],
        )
        .build()
}

#[tokio::test]
async fn resolves_schema2_by_tag_and_fetches_every_blob() {
    let reg = TestRegistry::start().await;
    let image = TestImage::builder(Format::Docker)
        .layer(
            Compression::Gzip,
            &[("bin/", b""), ("bin/hello", b"#!/bin/sh\necho hi\n")],
        )
        .layer(Compression::None, &[("etc/motd", b"welcome")])
        .build();
    let digest = reg.push_image("library/app", "v1", &image).await;
    let c = client();
    let r = reg.reference("library/app:v1");
    let resolved = c.resolve(&r, &platform("linux/amd64"), None).await.unwrap();
    assert_eq!(resolved.manifest_digest, digest);
    assert_eq!(resolved.manifest_media_type, media_types::DOCKER_MANIFEST);
    assert_eq!(&resolved.manifest_bytes[..], &image.manifest[..]);
    assert_eq!(resolved.index_digest, None);
    assert_eq!(resolved.config.digest, image.config_digest);
    assert_eq!(resolved.config.media_type, media_types::DOCKER_CONFIG);
    assert_eq!(resolved.layers.len(), 2);
    for (got, want) in resolved.layers.iter().zip(&image.layers) {
        assert_eq!(got.digest, want.digest);
        assert_eq!(got.size, want.data.len() as u64);
        assert_eq!(got.media_type, want.media_type);
    }
    let config = c
        .fetch_blob_bytes(&r, &resolved.config.digest, None)
        .await
        .unwrap();
    assert_eq!(&config[..], &image.config[..]);
    for layer in &image.layers {
        let blob = c.fetch_blob(&r, &layer.digest, 0, None).await.unwrap();
        assert!(!blob.restarted);
        assert_eq!(blob.total_size, Some(layer.data.len() as u64));
        assert_eq!(collect(blob.stream).await.unwrap(), layer.data);
    }
}

#[tokio::test]
async fn resolves_oci_with_zstd_gzip_and_plain_layers_by_tag_and_digest() {
    let reg = TestRegistry::start().await;
    let image = TestImage::builder(Format::Oci)
        .layer(Compression::Zstd, &[("a", b"zstd layer")])
        .layer(Compression::Gzip, &[("b", b"gzip layer")])
        .layer(Compression::None, &[("c", b"plain layer")])
        .build();
    let digest = reg.push_image("oci/app", "1.0", &image).await;
    let c = client();
    let by_tag = c
        .resolve(&reg.reference("oci/app:1.0"), &Platform::host(), None)
        .await
        .unwrap();
    assert_eq!(by_tag.manifest_media_type, media_types::OCI_MANIFEST);
    assert_eq!(by_tag.config.media_type, media_types::OCI_CONFIG);
    let types: Vec<&str> = by_tag
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            media_types::OCI_LAYER_ZSTD,
            media_types::OCI_LAYER_GZIP,
            media_types::OCI_LAYER
        ]
    );
    let by_digest_ref = reg.reference(&format!("oci/app@{digest}"));
    let by_digest = c
        .resolve(&by_digest_ref, &Platform::host(), None)
        .await
        .unwrap();
    assert_eq!(by_digest.manifest_digest, digest);
    assert_eq!(by_digest.layers, by_tag.layers);
    for layer in &image.layers {
        let got = c
            .fetch_blob_bytes(&by_digest_ref, &layer.digest, None)
            .await
            .unwrap();
        assert_eq!(&got[..], &layer.data[..]);
    }
}

#[tokio::test]
async fn picks_the_platform_from_an_index_with_variants() {
    let reg = TestRegistry::start().await;
    let platforms = [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "linux/arm/v6",
    ];
    let images: Vec<TestImage> = platforms
        .iter()
        .map(|p| image_for(Format::Oci, p))
        .collect();
    let index = TestIndex::new(Format::Oci, images.clone());
    let index_digest = reg.push_index("multi", "latest", &index).await;
    let c = client();
    let r = reg.reference("multi");
    let expect = |want: &str, image: &TestImage| {
        let c = c.clone();
        let r = r.clone();
        let want = platform(want);
        let image_digest = image.manifest_digest;
        let config_digest = image.config_digest;
        async move {
            let got = c
                .resolve(&r, &want, None)
                .await
                .unwrap_or_else(|e| panic!("{want}: {e}"));
            assert_eq!(got.manifest_digest, image_digest, "{want}");
            assert_eq!(got.config.digest, config_digest, "{want}");
            assert_eq!(got.index_digest, Some(index_digest), "{want}");
            assert_eq!(got.manifest_media_type, media_types::OCI_MANIFEST);
        }
    };
    expect("linux/amd64", &images[0]).await;
    expect("linux/arm64", &images[1]).await;
    expect("linux/arm64/v8", &images[1]).await;
    expect("linux/arm/v7", &images[2]).await;
    expect("linux/arm", &images[2]).await;
    expect("linux/arm/v6", &images[3]).await;

    // By the index's digest too.
    let by_digest = reg.reference(&format!("multi@{index_digest}"));
    let got = c
        .resolve(&by_digest, &platform("linux/arm/v6"), None)
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, images[3].manifest_digest);
    assert_eq!(got.index_digest, Some(index_digest));

    for missing in ["linux/arm/v5", "linux/s390x", "windows/amd64"] {
        let e = c.resolve(&r, &platform(missing), None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!("no matching manifest for {missing} in the manifest list entries")
        );
    }
}

#[tokio::test]
async fn takes_compatible_lower_variants_from_a_docker_manifest_list() {
    let reg = TestRegistry::start().await;
    let images = vec![
        image_for(Format::Docker, "linux/arm/v6"),
        image_for(Format::Docker, "linux/amd64"),
    ];
    let index = TestIndex::new(Format::Docker, images.clone());
    let index_digest = reg.push_index("armonly", "v1", &index).await;
    let c = client();
    let r = reg.reference("armonly:v1");
    let got = c
        .resolve(&r, &platform("linux/arm/v7"), None)
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, images[0].manifest_digest);
    assert_eq!(got.index_digest, Some(index_digest));
    assert_eq!(got.manifest_media_type, media_types::DOCKER_MANIFEST);
    // An arm64 host runs 32-bit arm images when there is nothing better.
    let got = c.resolve(&r, &platform("linux/arm64"), None).await.unwrap();
    assert_eq!(got.manifest_digest, images[0].manifest_digest);
    let e = c
        .resolve(&r, &platform("linux/arm/v5"), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no matching manifest for linux/arm/v5 in the manifest list entries"
    );
}

#[tokio::test]
async fn unknown_tags_repositories_and_blobs_are_not_found_in_dockers_words() {
    let reg = TestRegistry::start().await;
    let image = image_for(Format::Docker, "linux/amd64");
    reg.push_image("app", "v1", &image).await;
    let c = client();
    let e = c
        .resolve(&reg.reference("app:nope"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "manifest for {}/app:nope not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );
    let e = c
        .resolve(&reg.reference("nothere"), &Platform::host(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string().starts_with(&format!(
            "manifest for {}/nothere:latest not found",
            reg.host()
        )),
        "{e}"
    );
    let missing = berth_image::Digest::of(b"never pushed");
    let e = c
        .fetch_blob_bytes(&reg.reference("app"), &missing, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "blob {missing} not found in repository {}/app: blob unknown: blob unknown to registry",
            reg.host()
        )
    );
}

#[tokio::test]
async fn resumes_a_blob_from_an_offset() {
    let reg = TestRegistry::start().await;
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let image = TestImage::builder(Format::Oci)
        .raw_layer(Compression::None, big)
        .build();
    reg.push_image("resume", "v1", &image).await;
    let layer = &image.layers[0];
    let c = client();
    let r = reg.reference("resume:v1");
    for offset in [1u64, 4096, layer.data.len() as u64 - 1] {
        let blob = c.fetch_blob(&r, &layer.digest, offset, None).await.unwrap();
        assert!(!blob.restarted, "offset {offset}");
        assert_eq!(blob.offset, offset);
        assert_eq!(blob.total_size, Some(layer.data.len() as u64));
        assert_eq!(
            collect(blob.stream).await.unwrap(),
            &layer.data[offset as usize..],
            "offset {offset}"
        );
    }
}

#[tokio::test]
async fn insecure_registries_fall_back_from_https_to_http() {
    let reg = TestRegistry::start().await;
    let image = image_for(Format::Oci, "linux/amd64");
    let digest = reg.push_image("app", "v1", &image).await;
    // Listed as insecure, the loopback registry is probed over HTTPS first (the TLS handshake
    // with a plain HTTP server fails) and then reached over HTTP.
    let cfg = ClientConfig {
        insecure_registries: vec![reg.host()],
        ..ClientConfig::default()
    };
    let c = RegistryClient::new(cfg).unwrap();
    let got = c
        .resolve(&reg.reference("app:v1"), &platform("linux/amd64"), None)
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, digest);
    // Anonymous login against a registry without auth succeeds without a token.
    let token = c
        .login(
            &reg.host(),
            &berth_distribution::Credentials::basic("u", "p"),
        )
        .await
        .unwrap();
    assert_eq!(token, None);
}
