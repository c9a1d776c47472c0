//! `edgewatch check` against the simulator over HTTPS, trusting its CA with --ca-file:
//! exit 0 when Ready, 1 when not, 2 when it cannot judge (and the message says why).

use std::path::{Path, PathBuf};
use std::process::Output;

use edgewatch::sim::{self, Action, Scenario, SimConfig, SimHandle, TlsMode};

const SCENARIO: &str = "\
devices:
  - id: good-gw
  - id: bad-gw
    modules:
      - {name: worker, image: 'example.azurecr.io/worker:1.0', restartPolicy: never}
";

const ENV: &str = "EW_CHECK_TEST_CS";

struct Fixture {
    sim: SimHandle,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let sim = sim::start(SimConfig {
            scenario: Scenario::from_yaml(SCENARIO).unwrap(),
            tls: TlsMode::SelfSigned {
                ca_out: dir.path().join("ca.pem"),
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        sim.apply(
            "bad-gw",
            Action::Crash {
                module: "worker".into(),
                exit_code: 1,
            },
        )
        .unwrap();
        Fixture { sim, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn watch(&self, name: &str, spec_tail: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.yaml"));
        let yaml = format!(
            "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata:\n  name: {name}\n  namespace: iot\nspec:\n  hub:\n    connectionStringSecretRef: {{name: hub, key: connectionString}}\n{spec_tail}"
        );
        std::fs::write(&path, yaml).unwrap();
        path
    }

    async fn check(&self, watch: &Path, extra: &[&str], connection_string: Option<&str>) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgewatch"));
        cmd.arg("check")
            .arg("-f")
            .arg(watch)
            .args(["--connection-string-env", ENV])
            .args(extra)
            .env_remove(ENV);
        if let Some(cs) = connection_string {
            cmd.env(ENV, cs);
        }
        cmd.output().await.unwrap()
    }

    async fn check_with_ca(&self, watch: &Path, extra: &[&str]) -> Output {
        let ca = self.ca();
        let mut args = vec!["--ca-file", ca.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.check(watch, &args, Some(&self.sim.connection_string()))
            .await
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn secret_key(sim: &SimHandle) -> String {
    sim.policies()[0].key.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_device_is_ready_and_exits_0() {
    let f = Fixture::start().await;
    let watch = f.watch("good", "  devices: [good-gw]\n");
    let out = f.check_with_ca(&watch, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.lines().nth(1).unwrap().starts_with("good "), "{text}");
    assert!(text.contains("Ready            True     Ready"), "{text}");
    assert!(!stderr(&out).contains('\x1b'), "no progress bar off a TTY");

    let json = f.check_with_ca(&watch, &["-o", "json"]).await;
    assert_eq!(json.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["summary"]["devices"], 1);
    assert_eq!(status["summary"]["ready"], 1);
    assert_eq!(status["devices"][0]["deviceId"], "good-gw");
    assert_eq!(
        status["devices"][0]["reachable"]["reason"],
        "AgentResponded"
    );

    let yaml = f.check_with_ca(&watch, &["-o", "yaml"]).await;
    assert_eq!(yaml.status.code(), Some(0));
    let status: serde_json::Value = serde_saphyr::from_str(&stdout(&yaml)).unwrap();
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_module_is_not_ready_and_exits_1() {
    let f = Fixture::start().await;
    let watch = f.watch("mixed", "  devices: [good-gw, bad-gw]\n");
    let out = f.check_with_ca(&watch, &["-o", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["summary"]["ready"], 1);
    assert_eq!(status["summary"]["unhealthy"], 1);
    let worst = &status["devices"][0];
    assert_eq!(worst["deviceId"], "bad-gw");
    assert_eq!(worst["ready"]["reason"], "ModuleFailed");
    assert_eq!(worst["failingModules"][0]["name"], "worker");
    assert_eq!(worst["failingModules"][0]["exitCode"], 1);
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_check_cannot_judge_exits_2_with_the_reason_and_no_secret() {
    let f = Fixture::start().await;
    let key = secret_key(&f.sim);
    let watch = f.watch("good", "  devices: [good-gw]\n");

    // No connection string in the environment.
    let out = f
        .check(&watch, &["--ca-file", f.ca().to_str().unwrap()], None)
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("environment variable {ENV} is not set")),
        "{}",
        stderr(&out)
    );

    // A key the hub does not accept: 401.
    let wrong = f
        .sim
        .connection_string()
        .replace(&key, "d3Jvbmcta2V5LXdyb25nLWtleQ==");
    let out = f
        .check(
            &watch,
            &["--ca-file", f.ca().to_str().unwrap()],
            Some(&wrong),
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(
        !message.contains("d3Jvbmcta2V5"),
        "the key leaked: {message}"
    );

    // Without the simulator's CA the TLS handshake fails: verification is never skipped.
    let out = f.check(&watch, &[], Some(&f.sim.connection_string())).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("TLS failure"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&key));

    // Nothing listens at the hub URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("https://localhost:{port}");
    let out = f.check_with_ca(&watch, &["--hub-url", &url]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did not answer"), "{}", stderr(&out));

    // A spec the CRD's CEL rules refuse.
    let bad = f.watch("bad", "  devices: [good-gw]\n  interval: 1s\n");
    let out = f.check_with_ca(&bad, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("spec.interval: must be at least 10s"),
        "{}",
        stderr(&out)
    );

    // Not a watch at all, and a file that does not exist.
    let not_watch = f.dir.path().join("cm.yaml");
    std::fs::write(&not_watch, "kind: ConfigMap\n").unwrap();
    let out = f.check_with_ca(&not_watch, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected EdgeDeviceWatch"));
    let out = f
        .check_with_ca(&f.dir.path().join("absent.yaml"), &[])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"));

    // A device the hub does not know is judged (not Ready), not an error.
    let unknown = f.watch("unknown", "  devices: [no-such-gw]\n");
    let out = f.check_with_ca(&unknown, &["-o", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    f.sim.shutdown().await;
}
