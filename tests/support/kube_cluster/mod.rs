//! A real Kubernetes API server for tests: etcd and kube-apiserver 1.35, built from the Go
//! module proxy by `scripts/build-kube-apiserver`, run by `testcluster` on free loopback
//! ports with generated certificates, RBAC, a ServiceAccount token issuer and an audit log.
//!
//! Every test binary shares one server ([`shared`], started on first use); each test works
//! in its own namespace ([`KubeCluster::create_namespace`]). A test that restarts the
//! server starts its own ([`KubeCluster::start`]). The servers stop when the test binary
//! exits, however it exits. `docs/testing.md` shows how to use it.
//!
//! With `EDGEWATCH_TEST_KUBECONFIG` set (for example to the kubeconfig `scripts/dev-cluster
//! up` prints), [`shared`] uses that cluster instead of starting one.
// Each test binary uses part of this module, and reaches it through `pub`: there is no
// crate API here.
#![allow(dead_code, unreachable_pub)]

pub mod chart_rbac;
pub mod kubectl;
pub mod service_account;
pub mod supervisor;
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::Value;

pub use kubectl::Kubectl;
pub use supervisor::{Announcement, write_log};

use supervisor::Supervisor;

/// Names an existing cluster's admin kubeconfig for [`shared`] to use instead of starting one.
pub const EXTERNAL_KUBECONFIG_ENV: &str = "EDGEWATCH_TEST_KUBECONFIG";

/// The CRD as checked in (`crds/`), which is what users apply.
pub const CRD_FILE: &str = "crds/edgewatch.dev_edgedevicewatches.yaml";
pub const CRD_NAME: &str = "edgedevicewatches.edgewatch.dev";

/// A running API server and what is needed to reach it as the admin.
pub struct KubeCluster {
    server: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    audit_log: PathBuf,
    /// What testcluster reported when it was ready; `None` for an external cluster.
    started: Option<Announcement>,
    supervisor: Option<Mutex<Supervisor>>,
    crd_installed: OnceLock<Result<(), String>>,
}

/// The test binary's cluster, started on first use and stopped when the binary exits.
pub fn shared() -> &'static KubeCluster {
    static SHARED: OnceLock<Result<KubeCluster, String>> = OnceLock::new();
    let cluster = SHARED.get_or_init(|| match std::env::var_os(EXTERNAL_KUBECONFIG_ENV) {
        Some(path) => KubeCluster::external(PathBuf::from(path)),
        None => KubeCluster::try_start(&[]),
    });
    match cluster {
        Ok(cluster) => cluster,
        Err(e) => panic!("no Kubernetes API server for this test binary: {e}"),
    }
}

impl KubeCluster {
    /// Starts a cluster of the caller's own (stopped on drop), for tests that restart
    /// or otherwise disturb the server.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`KubeCluster::start`] with extra kube-apiserver flags, for example
    /// `--default-watch-cache-size=0` (later flags win over the defaults).
    pub fn start_with(apiserver_args: &[&str]) -> Self {
        Self::try_start(apiserver_args)
            .unwrap_or_else(|e| panic!("starting a Kubernetes API server: {e}"))
    }

    /// [`KubeCluster::start_with`] returning why the server did not come up (testcluster's
    /// message, with the end of the failing server's log) instead of panicking.
    pub fn try_start(apiserver_args: &[&str]) -> Result<Self, String> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "edgewatch-kube-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let (supervisor, ready) = Supervisor::start(&dir, apiserver_args)?;
        let cluster = Self {
            server: ready.server.clone(),
            kubeconfig: ready.kubeconfig.clone(),
            dir: ready.dir.clone(),
            audit_log: ready.audit_log.clone(),
            started: Some(ready),
            supervisor: Some(Mutex::new(supervisor)),
            crd_installed: OnceLock::new(),
        };
        cluster.log_versions();
        Ok(cluster)
    }

    fn external(kubeconfig: PathBuf) -> Result<Self, String> {
        let config = Kubeconfig::read_from(&kubeconfig)
            .map_err(|e| format!("{EXTERNAL_KUBECONFIG_ENV}={}: {e}", kubeconfig.display()))?;
        let server = config
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .ok_or_else(|| format!("{} names no server", kubeconfig.display()))?;
        let dir = kubeconfig
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let cluster = Self {
            server,
            audit_log: dir.join("audit.log"),
            kubeconfig,
            dir,
            started: None,
            supervisor: None,
            crd_installed: OnceLock::new(),
        };
        cluster.log_versions();
        Ok(cluster)
    }

    /// Puts the server's and kubectl's versions in the test log (past output capture).
    fn log_versions(&self) {
        let out = self.kubectl().ok(&["version", "-o", "json"]);
        let versions: Value = serde_json::from_str(&out).expect("kubectl version -o json");
        let took = self
            .started
            .as_ref()
            .map(|s| format!(", started in {} ms", s.millis["total"]))
            .unwrap_or_else(|| " (external)".to_owned());
        let field = |side: &str, key: &str| versions[side][key].as_str().unwrap_or("?").to_owned();
        write_log(&format!(
            "real API server: kube-apiserver {} ({}) at {}{took}; kubectl {}",
            field("serverVersion", "gitVersion"),
            field("serverVersion", "goVersion"),
            self.server,
            field("clientVersion", "gitVersion"),
        ));
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The cluster's directory (certificates, logs, kubeconfigs); removed when it stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start timings and process ids, for a cluster this process started.
    pub fn started(&self) -> Option<&Announcement> {
        self.started.as_ref()
    }

    /// A client acting as the admin. Make one per test: a client belongs to the tokio
    /// runtime it was first used on.
    pub async fn client(&self) -> Client {
        client_for(&self.kubeconfig).await
    }

    /// kubectl 1.35 (from `target/tools/`) acting as the admin.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig)
    }

    /// Creates a namespace named `<prefix>-<random>` and returns its name. Namespaces are
    /// never deleted: no namespace controller runs, and the cluster goes away anyway.
    pub async fn create_namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client().await)
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        name
    }

    /// Applies the checked-in CRD with `kubectl apply --server-side` and waits until it is
    /// Established; once per cluster.
    pub fn install_crd(&self) {
        let result = self.crd_installed.get_or_init(|| {
            let kubectl = self.kubectl();
            let file = tools::repo().join(CRD_FILE);
            let file = file.to_str().expect("UTF-8 path");
            kubectl.try_ok(&["apply", "--server-side", "-f", file])?;
            let crd = format!("crd/{CRD_NAME}");
            kubectl.try_ok(&["wait", "--for=condition=Established", "--timeout=60s", &crd])?;
            Ok(())
        });
        if let Err(e) = result {
            panic!("installing the CRD: {e}");
        }
    }

    /// The audit log's events so far: every write (create, update, patch, delete) by any
    /// client, at `Metadata` level (user, verb, objectRef, responseStatus); reads and the
    /// server's own bookkeeping are not recorded. An event lands there just after its
    /// response, so poll for one rather than reading once.
    pub fn audit_events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.audit_log)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.audit_log.display()));
        text.lines()
            .map(|line| serde_json::from_str(line).expect("audit log lines are JSON"))
            .collect()
    }

    /// Restarts kube-apiserver on the same port with the same etcd: open connections and
    /// watches break, then the same objects are served again. Only on a cluster from
    /// [`KubeCluster::start`] (restarting the shared one would disturb other tests).
    pub fn restart_apiserver(&self) -> Announcement {
        let supervisor = self
            .supervisor
            .as_ref()
            .expect("restart_apiserver needs a cluster this process started");
        supervisor
            .lock()
            .expect("supervisor")
            .restart_apiserver()
            .unwrap_or_else(|e| panic!("restarting kube-apiserver: {e}"))
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            supervisor
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .stop();
        }
    }
}

/// A client from any kubeconfig (the admin's, or a ServiceAccount's).
pub async fn client_for(kubeconfig: &Path) -> Client {
    let file = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", kubeconfig.display()));
    Client::try_from(config).expect("a kube client")
}
