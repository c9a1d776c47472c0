//! The chart's ServiceAccount and RBAC objects, rendered by the real `helm template`, to
//! apply to a real server as they are, or with one rule removed (to show what the
//! operator does without it).

use std::process::Command;

use serde_json::Value;

use super::tools;

const CHART: &str = "charts/edgewatch";
const RBAC_KINDS: [&str; 5] = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// The identity and permissions one release of the chart creates.
#[derive(Debug, Clone)]
pub struct ChartRbac {
    pub release: String,
    pub namespace: String,
    documents: Vec<Value>,
}

/// One rule of a rendered Role or ClusterRole.
#[derive(Debug, Clone)]
pub struct RbacRule {
    /// `ClusterRole/<name>` or `Role/<namespace>/<name>`.
    pub role: String,
    pub rule: Value,
    document: usize,
    index: usize,
}

impl ChartRbac {
    /// `helm template <release> charts/edgewatch --namespace <namespace> --set ...`, keeping
    /// the ServiceAccount, (Cluster)Roles and bindings. Release names containing
    /// `edgewatch` become the objects' names, so give each test its own (ClusterRoles are
    /// cluster-wide).
    pub fn render(release: &str, namespace: &str, sets: &[&str]) -> Self {
        let mut helm = Command::new(tools::helm());
        helm.current_dir(tools::repo()).args([
            "template",
            release,
            CHART,
            "--namespace",
            namespace,
        ]);
        for set in sets {
            helm.args(["--set", set]);
        }
        let out = helm.output().expect("helm runs");
        assert!(
            out.status.success(),
            "helm template failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(&text).expect("helm renders YAML documents");
        let documents = documents
            .into_iter()
            .filter(|d| RBAC_KINDS.iter().any(|kind| d["kind"] == *kind))
            .collect();
        Self {
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            documents,
        }
    }

    pub fn documents(&self) -> &[Value] {
        &self.documents
    }

    /// The name of the rendered ServiceAccount.
    pub fn service_account(&self) -> String {
        self.documents
            .iter()
            .find(|d| d["kind"] == "ServiceAccount")
            .and_then(|d| d["metadata"]["name"].as_str())
            .expect("the chart renders a ServiceAccount")
            .to_owned()
    }

    /// Every rule of every rendered Role and ClusterRole.
    pub fn rules(&self) -> Vec<RbacRule> {
        let mut rules = Vec::new();
        for (document, object) in self.documents.iter().enumerate() {
            let Some(items) = object["rules"].as_array() else {
                continue;
            };
            let role = role_name(object);
            for (index, rule) in items.iter().enumerate() {
                rules.push(RbacRule {
                    role: role.clone(),
                    rule: rule.clone(),
                    document,
                    index,
                });
            }
        }
        rules
    }

    /// The same objects with `rule` removed from its role.
    pub fn without(&self, rule: &RbacRule) -> Self {
        let mut copy = self.clone();
        copy.documents[rule.document]["rules"]
            .as_array_mut()
            .expect("a role's rules")
            .remove(rule.index);
        copy
    }

    /// The objects as one manifest for `kubectl apply` (JSON documents are YAML).
    pub fn manifest(&self) -> String {
        self.documents
            .iter()
            .map(|d| serde_json::to_string(d).expect("JSON"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

fn role_name(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
