//! moto's S3 server (`.tools/moto`, installed by scripts/setup) on a free
//! loopback port: it stands in for S3 in the result store's tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// moto checks no signatures, but serves private objects only to a
/// request that carries one.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_static(AUTHORIZATION),
    );
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/octet-stream"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _child: Child,
}

impl S3Server {
    /// Starts the server and creates `bucket` in it.
    pub async fn start(bucket: &str) -> S3Server {
        let tools = super::harness::repo_root().join(".tools/moto");
        assert!(
            tools.join(".version").exists(),
            "moto is not installed: run scripts/setup"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("PYTHONPATH", &tools)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto's server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = client();
        let created = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                // Creating the bucket is also the readiness probe.
                if let Ok(r) = client.put(format!("{endpoint}/{bucket}")).send().await {
                    return r.status().is_success();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert_eq!(
            created,
            Ok(true),
            "moto did not start, or refused the bucket"
        );
        S3Server {
            endpoint,
            _child: child,
        }
    }

    /// The variables `edgethumb serve` reads for this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Every key in `bucket`.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let xml = client()
            .get(format!("{}/{bucket}?list-type=2", self.endpoint))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let url = format!("{}/{bucket}/{key}", self.endpoint);
        let r = client().get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap().to_vec()
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let url = format!("{}/{bucket}/{key}", self.endpoint);
        let r = client().put(url).body(body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}
