//! A real Prometheus (Debian's `prometheus` package) for `/metrics` tests: its own config
//! and storage in a temporary directory, listening on a free loopback port, scraping the
//! targets it is given every second; its query API answers instant queries.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running Prometheus; killed on drop, its directory removed.
pub struct Prometheus {
    child: Child,
    url: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`127.0.0.1:PORT`) at `/metrics` every second.
    pub fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().expect("a Prometheus directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: linkscope\n    scrape_interval: 1s\n    static_configs:\n      \
             - targets: [{}]\n",
            list.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("the config is written");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("http://127.0.0.1:{port}");
        let prometheus = Prometheus {
            child,
            url,
            agent,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !prometheus.ready() {
            assert!(Instant::now() < deadline, "Prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    fn ready(&self) -> bool {
        self.agent
            .get(format!("{}/-/ready", self.url))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    /// The result vector of an instant query: `(labels, value)` per series.
    pub fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let mut response = self
            .agent
            .get(format!("{}/api/v1/query", self.url))
            .query("query", query)
            .call()
            .expect("Prometheus answers");
        let text = response
            .body_mut()
            .read_to_string()
            .expect("a query answer");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value["status"], "success", "query {query}: {value}");
        value["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| {
                        let v = s["value"][1]
                            .as_str()
                            .unwrap_or("NaN")
                            .parse()
                            .unwrap_or(f64::NAN);
                        (s["metric"].clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the last scrape of every target succeeded (`up == 1`).
    pub fn targets_up(&self) -> bool {
        let up = self.query("up");
        !up.is_empty() && up.iter().all(|(_, v)| *v == 1.0)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
