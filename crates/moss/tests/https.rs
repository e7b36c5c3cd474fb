//! Packages fetched over HTTPS (rustls) from a local TLS server with a self-signed certificate:
//! verified when its root is pinned, refused with an error naming the URL when it is not.

use std::{path::Path, sync::Arc};

use moss::{
    events::Silent,
    repository::{FetchOptions, Fetcher, PackageRequest},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

/// Serve `body` for every request, over TLS, until the test ends. Returns the port.
async fn serve(
    body: Vec<u8>,
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> u16 {
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(count) => request.extend_from_slice(&buffer[..count]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(header.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn stone_fixture() -> std::path::PathBuf {
    let mut directory = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    loop {
        let candidate =
            directory.join("shared/fixtures/stones/bash-completion-2.11-1-1-x86_64.stone");
        if candidate.exists() {
            return candidate;
        }
        assert!(directory.pop(), "shared/fixtures not found above the crate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_fetched_over_https_only_from_a_trusted_server() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let certificate = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let body = std::fs::read(stone_fixture()).unwrap();
    let sha256 = moss::store::hex(&<sha2::Sha256 as sha2::Digest>::digest(&body));
    let port = serve(body.clone(), certificate, key).await;
    let work = tempfile::tempdir().unwrap();
    let url: url::Url = format!("https://localhost:{port}/bash-completion.stone")
        .parse()
        .unwrap();
    let request = |name: &str| PackageRequest {
        name: "bash-completion".to_owned(),
        url: url.clone(),
        sha256: sha256.clone(),
        size: Some(body.len() as u64),
        destination: work.path().join(name),
    };

    // Pinned root: the download succeeds and is verified.
    let root = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap();
    let options = FetchOptions {
        attempts: 1,
        ..FetchOptions::default()
    };
    let trusting = Fetcher::with_client_builder(
        reqwest::Client::builder().tls_certs_only([root]),
        options.clone(),
        Arc::new(Silent),
    );
    let fetched = trusting
        .fetch_package(&request("trusted.stone"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);

    // The system roots do not know this certificate: refused, nothing left behind.
    let default =
        Fetcher::with_client_builder(reqwest::Client::builder(), options, Arc::new(Silent));
    let error = default
        .fetch_package(&request("untrusted.stone"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(url.as_str()), "{error}");
    assert!(!work.path().join("untrusted.stone").exists());
}
