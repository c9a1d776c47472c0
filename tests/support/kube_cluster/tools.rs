//! Where the test tools live (installed by `scripts/install-test-tools` into
//! `target/tools/`), and the message that says how to get them when one is missing.

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools() -> PathBuf {
    repo().join("target/tools")
}

/// A tool under `target/tools/` (`kubectl`, `helm`, `kube/bin/testcluster`, ...), or a
/// panic that names the script installing it.
pub fn tool(relative: &str) -> PathBuf {
    let path = tools().join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-test-tools (it builds the real kube-apiserver and \
         etcd with Go and unpacks kubectl and helm into target/tools/)",
        path.display()
    );
    path
}

pub fn kubectl() -> PathBuf {
    tool("kubectl")
}

pub fn helm() -> PathBuf {
    tool("helm")
}

/// The supervisor that runs etcd and kube-apiserver (tests/kube-apiserver/cmd/testcluster).
pub fn testcluster() -> PathBuf {
    for server in ["kube/bin/etcd", "kube/bin/kube-apiserver"] {
        tool(server);
    }
    tool("kube/bin/testcluster")
}
