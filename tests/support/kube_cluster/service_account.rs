//! Kubeconfigs for ServiceAccounts, with a token minted by the TokenRequest API (what
//! `kubectl create token` does), so a test acts exactly as a pod with that account would.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::Kubeconfig;
use kube::{Api, Client};
use serde_json::json;

use super::{KubeCluster, client_for};

/// How long minted tokens live: longer than any test, as short as the server allows
/// comfortably (its minimum is ten minutes).
const TOKEN_LIFETIME_SECONDS: i64 = 3600;

impl KubeCluster {
    /// Mints a token for the existing ServiceAccount `namespace/name` and writes a
    /// kubeconfig using it (default namespace `namespace`) into the cluster's directory.
    /// Returns its path, for kubectl or for `edgewatch run` (`KUBECONFIG=<path>`).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.mint_token(namespace, name).await;
        let ca = self.certificate_authority_data();
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "edgewatch-test", "cluster": {
                "server": self.server(),
                "certificate-authority-data": ca,
            }}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {
                "cluster": "edgewatch-test",
                "user": user,
                "namespace": namespace,
            }}],
            "current-context": user,
        });
        let path = self
            .dir()
            .join(format!("serviceaccount-{namespace}-{name}.kubeconfig"));
        write_private(&path, &serde_json::to_vec_pretty(&config).expect("JSON"));
        path
    }

    /// A client acting as the ServiceAccount `namespace/name`.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Client {
        client_for(&self.service_account_kubeconfig(namespace, name).await).await
    }

    async fn mint_token(&self, namespace: &str, name: &str) -> String {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(), // the API server's own
                expiration_seconds: Some(TOKEN_LIFETIME_SECONDS),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client().await, namespace);
        let minted = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
        minted.status.expect("TokenRequest answers a status").token
    }

    fn certificate_authority_data(&self) -> String {
        let admin = Kubeconfig::read_from(self.kubeconfig()).expect("admin kubeconfig");
        admin
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.certificate_authority_data.clone())
            .expect("the admin kubeconfig carries the CA inline")
    }
}

/// Writes a file only its owner can read: it holds a bearer token.
fn write_private(path: &std::path::Path, contents: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.write_all(contents)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
