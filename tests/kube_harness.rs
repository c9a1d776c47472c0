//! The real-API-server harness itself (tests/support/kube_cluster/): the server is the
//! pinned release with RBAC on, ServiceAccount kubeconfigs authenticate as the account,
//! the audit log records writes, the API server restarts in place, and no server
//! outlives the process that started it, even when that process is killed.

#[path = "support/kube_cluster/mod.rs"]
mod kube_cluster;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use kube_cluster::{KubeCluster, shared};
use serde_json::Value;

fn named<K: kube::Resource + Default>(name: &str) -> K {
    let mut object = K::default();
    *object.meta_mut() = ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    };
    object
}

async fn create_service_account(client: Client, namespace: &str, name: &str) {
    Api::<ServiceAccount>::namespaced(client, namespace)
        .create(&PostParams::default(), &named(name))
        .await
        .expect("creating the ServiceAccount");
}

#[tokio::test]
async fn the_server_is_the_pinned_kubernetes_release() {
    let version = shared().client().await.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.35.4");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "35")
    );
    let out = shared().kubectl().ok(&["version", "-o", "json"]);
    let versions: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(versions["serverVersion"]["gitVersion"], "v1.35.4");
    let client = versions["clientVersion"]["minor"].as_str().unwrap();
    assert_eq!(client, "35", "kubectl from target/tools is not 1.35");
}

#[tokio::test]
async fn a_service_account_kubeconfig_authenticates_as_that_account() {
    let cluster = shared();
    let namespace = cluster.create_namespace("harness-sa").await;
    create_service_account(cluster.client().await, &namespace, "probe").await;

    let kubeconfig = cluster
        .service_account_kubeconfig(&namespace, "probe")
        .await;
    let whoami = kube_cluster::Kubectl::new(&kubeconfig).ok(&["auth", "whoami", "-o", "json"]);
    let review: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["username"],
        format!("system:serviceaccount:{namespace}:probe")
    );
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
        0,
        "a kubeconfig holding a token must be private"
    );
}

#[tokio::test]
async fn rbac_is_enforced_for_an_account_without_bindings() {
    let cluster = shared();
    let namespace = cluster.create_namespace("harness-rbac").await;
    create_service_account(cluster.client().await, &namespace, "nobody").await;
    let client = cluster.service_account_client(&namespace, "nobody").await;

    let listed = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await;
    match listed {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("an account without bindings listed namespaces: {other:?}"),
    }
    // The admin is not limited.
    let admin = Api::<Namespace>::all(cluster.client().await)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        admin
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(&namespace))
    );
}

#[tokio::test]
async fn the_audit_log_records_each_write_with_its_user() {
    let cluster = shared();
    let namespace = cluster.create_namespace("harness-audit").await;
    Api::<ConfigMap>::namespaced(cluster.client().await, &namespace)
        .create(&PostParams::default(), &named("audited"))
        .await
        .unwrap();

    let is_our_create = |event: &Value| {
        event["verb"] == "create"
            && event["objectRef"]["resource"] == "configmaps"
            && event["objectRef"]["namespace"] == namespace.as_str()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        if let Some(event) = cluster.audit_events().into_iter().find(is_our_create) {
            break event;
        }
        assert!(
            Instant::now() < deadline,
            "the create never reached the audit log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["user"]["username"], "edgewatch-admin");
    assert_eq!(event["responseStatus"]["code"], 201);
    let reads = cluster
        .audit_events()
        .into_iter()
        .filter(|e| e["verb"] == "get" || e["verb"] == "list" || e["verb"] == "watch")
        .count();
    assert_eq!(reads, 0, "the audit policy records writes only");
}

/// Whether a process is gone (reaped, or a zombie waiting for its parent).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until_gone(pids: &[(String, u32)], within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if pids.iter().all(|(_, pid)| is_gone(*pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<_> = pids.iter().filter(|(_, pid)| !is_gone(*pid)).collect();
    panic!("still running after {within:?}: {alive:?}");
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
}

#[tokio::test]
async fn the_api_server_restarts_in_place_with_its_flags_and_objects() {
    let cluster = KubeCluster::start_with(&["--v=1"]);
    let before = cluster.started().unwrap().pids["kube-apiserver"];
    let namespace = cluster.create_namespace("harness-restart").await;
    Api::<ConfigMap>::namespaced(cluster.client().await, &namespace)
        .create(&PostParams::default(), &named("kept"))
        .await
        .unwrap();

    let restarted = cluster.restart_apiserver();
    let after = restarted.pids["kube-apiserver"];
    assert_ne!(before, after, "a new kube-apiserver process");
    assert!(is_gone(before));
    assert_eq!(
        restarted.server,
        cluster.server(),
        "same address after a restart"
    );
    let kept = Api::<ConfigMap>::namespaced(cluster.client().await, &namespace)
        .get("kept")
        .await
        .expect("objects survive a restart (they live in etcd)");
    assert_eq!(kept.metadata.name.as_deref(), Some("kept"));
}

#[test]
fn a_server_that_cannot_start_is_reported_with_its_log() {
    let Err(error) = KubeCluster::try_start(&["--no-such-flag=1"]) else {
        panic!("kube-apiserver started with an unknown flag");
    };
    assert!(error.contains("kube-apiserver exited"), "{error}");
    assert!(error.contains("unknown flag: --no-such-flag"), "{error}");
}

#[test]
fn servers_die_with_a_killed_testcluster() {
    let cluster = KubeCluster::start();
    let started = cluster.started().unwrap().clone();
    kill_9(started.pids["testcluster"]);
    let servers: Vec<(String, u32)> = ["etcd", "kube-apiserver"]
        .into_iter()
        .map(|name| (name.to_owned(), started.pids[name]))
        .collect();
    wait_until_gone(&servers, Duration::from_secs(30));
    // Killed, testcluster could not remove its directory.
    std::fs::remove_dir_all(&started.dir).unwrap();
}

/// Set in the child process of `no_server_outlives_a_killed_test_process`.
const HOLDER_ENV: &str = "EDGEWATCH_TEST_HOLD_CLUSTER";

/// Runs this test binary again as a child that starts the shared cluster the way every
/// test does, then SIGKILLs that child: testcluster, etcd and kube-apiserver must all
/// exit, and the cluster directory must be removed.
#[test]
fn no_server_outlives_a_killed_test_process() {
    if std::env::var_os(HOLDER_ENV).is_some() {
        hold_the_shared_cluster();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_server_outlives_a_killed_test_process",
            "--nocapture",
        ])
        .env(HOLDER_ENV, "1")
        .env_remove(kube_cluster::EXTERNAL_KUBECONFIG_ENV)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let started: Value = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| serde_json::from_str(line.strip_prefix("holding: ")?).ok())
        .expect("the child reports the cluster it holds");

    child.kill().unwrap(); // SIGKILL: no destructor, no atexit, nothing runs in the child
    child.wait().unwrap();

    let pids: Vec<(String, u32)> = started["pids"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, pid)| (name.clone(), pid.as_u64().unwrap() as u32))
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    wait_until_gone(&pids, Duration::from_secs(60));
    let dir = Path::new(started["dir"].as_str().unwrap());
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

fn hold_the_shared_cluster() -> ! {
    let started = shared().started().expect("a cluster this process started");
    let report = serde_json::json!({"pids": started.pids, "dir": started.dir});
    println!("holding: {report}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
