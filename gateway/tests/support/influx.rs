//! Time-series servers for the InfluxDB uplink tests, each a child process
//! on free loopback ports with its data in a temporary folder: InfluxDB 1.x
//! (Debian's `influxdb`, the v1 `/write` API) and VictoriaMetrics (Debian's
//! `victoria-metrics`, which accepts line protocol on `/api/v2/write`).

use super::{free_port, terminate};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn require(bin: &str, package: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is not installed; run scripts/test (it runs apt-get install -y {package})"
    );
}

async fn wait_http(url: &str, what: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not answer {url} within 15 s");
}

/// InfluxDB 1.x with its own data folder; can be stopped and started again.
pub struct Influxd {
    child: Option<Child>,
    pub port: u16,
    rpc_port: u16,
    dir: tempfile::TempDir,
}

impl Influxd {
    const BIN: &'static str = "/usr/bin/influxd";

    /// Starts it and creates database `db`.
    pub async fn start(db: &str) -> Influxd {
        require(Self::BIN, "influxdb");
        let mut s = Influxd {
            child: None,
            port: free_port().await,
            rpc_port: free_port().await,
            dir: tempfile::tempdir().unwrap(),
        };
        s.resume().await;
        s.query(&format!("CREATE DATABASE \"{db}\""), None).await;
        s
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same ports and data.
    pub async fn resume(&mut self) {
        let d = self.dir.path().display();
        let conf = self.dir.path().join("influxdb.conf");
        std::fs::write(
            &conf,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n\
                 [continuous_queries]\n  enabled = false\n",
                rpc = self.rpc_port,
                port = self.port
            ),
        )
        .unwrap();
        self.child = Some(
            Command::new(Self::BIN)
                .arg("-config")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_http(&format!("{}/ping", self.url()), "influxd").await;
    }

    /// Stops it with SIGTERM.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    /// Runs InfluxQL; returns the JSON answer (times in ms).
    pub async fn query(&self, q: &str, db: Option<&str>) -> serde_json::Value {
        let mut params = vec![("q", q.to_owned()), ("epoch", "ms".to_owned())];
        if let Some(db) = db {
            params.push(("db", db.to_owned()));
        }
        let r = reqwest::Client::new()
            .post(format!("{}/query", self.url()))
            .form(&params)
            .send()
            .await
            .unwrap();
        serde_json::from_str(&r.text().await.unwrap()).unwrap()
    }

    /// Writes raw line protocol (ms) to `db`.
    pub async fn write(&self, db: &str, lines: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/write?db={db}&precision=ms", self.url()))
            .body(lines.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Rows of `SELECT * FROM measurement` as (column → value) maps.
    pub async fn rows(
        &self,
        db: &str,
        measurement: &str,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let v = self
            .query(&format!("SELECT * FROM \"{measurement}\""), Some(db))
            .await;
        let Some(series) = v["results"][0]["series"][0].as_object() else {
            return Vec::new();
        };
        let cols: Vec<String> = series["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                cols.iter()
                    .cloned()
                    .zip(row.as_array().unwrap().iter().cloned())
                    .collect()
            })
            .collect()
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// VictoriaMetrics: line protocol in on `/api/v2/write`, series out on
/// `/api/v1/export`.
pub struct Victoria {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Victoria {
    const BIN: &'static str = "/usr/bin/victoria-metrics";

    /// Starts it on a free port.
    pub async fn start() -> Victoria {
        require(Self::BIN, "victoria-metrics");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port().await;
        let child = Command::new(Self::BIN)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.path().display()))
            .arg("-loggerLevel=ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let v = Victoria {
            child,
            port,
            _dir: dir,
        };
        wait_http(&format!("{}/health", v.url()), "victoria-metrics").await;
        v
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every sample of metrics matching `selector`, as (metric labels, value, ts ms).
    pub async fn export(&self, selector: &str) -> Vec<(serde_json::Value, f64, i64)> {
        let client = reqwest::Client::new();
        let _ = client
            .get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await;
        let text = client
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[("match[]", selector)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let values = v["values"].as_array().unwrap();
            let ts = v["timestamps"].as_array().unwrap();
            for (val, t) in values.iter().zip(ts) {
                out.push((
                    v["metric"].clone(),
                    val.as_f64().unwrap_or(f64::NAN),
                    t.as_i64().unwrap(),
                ));
            }
        }
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
