//! The Helm chart, rendered by the real `helm` binary and read back as Kubernetes objects.
//!
//! What it proves: the hardened defaults hold, RBAC has no wildcards and only the verbs
//! the operator needs, the chart's CRD is the generated one, workload identity is wired as
//! Azure documents it, and every alert expression names a metric the operator really
//! exports (collected from `/metrics` of a running ops server).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use edgewatch::health::report::ConditionStatus;
use edgewatch::ops::metrics::{Metrics, WatchDeviceCounts};
use edgewatch::ops::server::{OpsServer, Readiness};
use serde_json::Value;

const CHART: &str = "charts/edgewatch";
const RELEASE_NAMESPACE: &str = "edgewatch-system";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let helm = repo().join("target/tools/helm");
    assert!(
        helm.is_file(),
        "helm is missing at {}: run scripts/install-test-tools (or scripts/test) first",
        helm.display()
    );
    helm
}

/// `helm template` with the given values files (relative to the chart) and `--set`s.
fn try_render(values: &[&str], sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut cmd = Command::new(helm());
    cmd.current_dir(repo()).args([
        "template",
        "edgewatch",
        CHART,
        "--namespace",
        RELEASE_NAMESPACE,
    ]);
    for file in values {
        cmd.arg("--values").arg(Path::new(CHART).join(file));
    }
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd.output().expect("helm runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("rendered manifests are not YAML: {e}\n{text}"));
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn render(values: &[&str], sets: &[&str]) -> Vec<Value> {
    try_render(values, sets).unwrap_or_else(|e| panic!("helm template failed: {e}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn container(docs: &[Value]) -> &Value {
    &one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<&str> {
    strings(&container(docs)["args"])
}

// --- Chart metadata and CRD ------------------------------------------------------------

#[test]
fn chart_app_version_is_the_crate_version() {
    let text = std::fs::read_to_string(repo().join(CHART).join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let deployment = render(&[], &[]);
    let image = container(&deployment)["image"].as_str().unwrap().to_owned();
    assert!(
        image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "{image}"
    );
}

#[test]
fn chart_crd_is_the_generated_crd() {
    let name = "edgewatch.dev_edgedevicewatches.yaml";
    let generated = repo().join("crds").join(name);
    let in_chart = repo().join(CHART).join("crds").join(name);
    let generated = std::fs::read_to_string(&generated).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}): the generated CRD (`edgewatch crd`) must be checked in \
             before the chart can be compared with it",
            generated.display()
        )
    });
    let in_chart = std::fs::read_to_string(&in_chart)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", in_chart.display()));
    assert!(
        generated == in_chart,
        "charts/edgewatch/crds/{name} differs from crds/{name}: copy the generated file into the chart"
    );
}

// --- Security defaults -----------------------------------------------------------------

#[test]
fn defaults_are_hardened() {
    let docs = render(&[], &[]);
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let pod_sc = &pod["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true);
    assert_ne!(pod_sc["runAsUser"], 0);
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault");
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["privileged"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert!(pod["hostNetwork"].is_null() && pod["hostPID"].is_null());
}

#[test]
fn deployment_has_probes_downward_api_and_resources() {
    let docs = render(&[], &[]);
    let deployment = one(&docs, "Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let c = container(&docs);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    for (var, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let env = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var)
            .unwrap_or_else(|| panic!("{var} missing"));
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], field);
    }
    let args = args(&docs);
    assert_eq!(args[0], "run");
    for expected in [
        "--log-format=json",
        "--metrics-address=0.0.0.0:8080",
        "--concurrency=4",
        "--max-device-entries=100",
        "--leader-election=true",
        "--lease-name=edgewatch",
        "--lease-duration=15s",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    assert!(!args.contains(&"--no-module-metrics"));
    assert!(!args.iter().any(|a| a.starts_with("--namespace")));
    assert_eq!(env_value(c, "RUST_LOG"), "info,kube=warn");
    let strategy = &deployment["spec"]["strategy"];
    assert_eq!(strategy["type"], "RollingUpdate");
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 0);
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn operator_flags_follow_values() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let args = args(&docs);
    for expected in [
        "--log-format=text",
        "--concurrency=8",
        "--max-device-entries=50",
        "--lease-name=edgewatch-leader",
        "--lease-duration=30s",
        "--no-module-metrics",
        "--namespace=iot-plant-a",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    let c = container(&docs);
    assert_eq!(env_value(c, "RUST_LOG"), "edgewatch=debug,kube=info");
    assert_eq!(env_value(c, "EXTRA"), "1");
}

/// The command line `edgewatch run` accepts (the ops-server flags included).
fn run_command() -> clap::Command {
    use clap::Args as _;
    edgewatch::cli::run::RunArgs::augment_args(clap::Command::new("run"))
}

#[test]
fn edgewatch_run_accepts_every_flag_the_chart_passes() {
    for values in [
        &[][..],
        &["ci/all-features-values.yaml"][..],
        &["ci/no-leader-election-values.yaml"][..],
    ] {
        let docs = render(values, &[]);
        let args = args(&docs);
        assert_eq!(args[0], "run");
        if let Err(e) = run_command().try_get_matches_from(&args) {
            panic!("{values:?}: edgewatch run refuses {args:?}: {e}");
        }
    }
    // Not vacuous: a flag `run` does not know is refused.
    assert!(
        run_command()
            .try_get_matches_from(["run", "--log-level=info"])
            .is_err()
    );
}

#[test]
fn without_leader_election_one_replica_is_recreated_and_no_lease_is_granted() {
    let docs = render(&["ci/no-leader-election-values.yaml"], &[]);
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let args = args(&docs);
    assert!(args.contains(&"--leader-election=false"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--lease")), "{args:?}");
    assert!(of_kind(&docs, "Role").is_empty());
    let err = try_render(&["ci/no-leader-election-values.yaml"], &["replicaCount=2"]).unwrap_err();
    assert!(err.contains("leaderElection"), "{err}");
}

#[test]
fn more_namespaces_than_the_operator_can_watch_are_refused() {
    let err = try_render(&[], &["operator.watchNamespaces={a,b}"]).unwrap_err();
    assert!(err.contains("watchNamespaces"), "{err}");
}

// --- RBAC --------------------------------------------------------------------------------

fn rules_of(role: &Value) -> &Vec<Value> {
    role["rules"].as_array().expect("role has rules")
}

/// (apiGroup, resource) → verbs, across every Role/ClusterRole rendered.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules_of(role) {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
                }
            }
        }
    }
    out
}

fn grant(group: &str, resource: &str, verb: &str) -> (String, String, String) {
    (group.to_owned(), resource.to_owned(), verb.to_owned())
}

fn watch_grants() -> BTreeSet<(String, String, String)> {
    let mut g = BTreeSet::new();
    for verb in ["get", "list", "watch"] {
        g.insert(grant("edgewatch.dev", "edgedevicewatches", verb));
        g.insert(grant("", "secrets", verb));
    }
    for verb in ["get", "patch", "update"] {
        g.insert(grant("edgewatch.dev", "edgedevicewatches/status", verb));
    }
    for verb in ["create", "patch"] {
        g.insert(grant("events.k8s.io", "events", verb));
    }
    g
}

#[test]
fn rbac_has_no_wildcards_in_any_value_set() {
    for values in [
        &[][..],
        &["ci/namespaced-values.yaml"][..],
        &["ci/all-features-values.yaml"][..],
    ] {
        let docs = render(values, &[]);
        let roles: Vec<&Value> = of_kind(&docs, "Role")
            .into_iter()
            .chain(of_kind(&docs, "ClusterRole"))
            .collect();
        assert!(!roles.is_empty());
        for role in roles {
            for rule in rules_of(role) {
                for field in ["verbs", "resources", "apiGroups", "resourceNames"] {
                    let items = strings(&rule[field]);
                    assert!(
                        !items.iter().any(|i| i.contains('*')),
                        "{values:?}: {} has a wildcard in {field}: {rule}",
                        role["metadata"]["name"]
                    );
                }
                assert!(rule["nonResourceURLs"].is_null());
            }
        }
    }
}

#[test]
fn cluster_wide_rbac_grants_exactly_what_the_operator_needs() {
    let docs = render(&[], &[]);
    let cluster_role = one(&docs, "ClusterRole");
    assert_eq!(grants(cluster_role), watch_grants());
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["name"], "edgewatch");
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NAMESPACE);

    let lease_role = one(&docs, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], RELEASE_NAMESPACE);
    let expected: BTreeSet<_> = ["create", "get", "update", "patch"]
        .into_iter()
        .map(|verb| grant("coordination.k8s.io", "leases", verb))
        .collect();
    assert_eq!(grants(lease_role), expected);
    // Everything but create is limited to the operator's own Lease.
    for rule in rules_of(lease_role) {
        if strings(&rule["verbs"]) != ["create"] {
            assert_eq!(strings(&rule["resourceNames"]), ["edgewatch"]);
        }
    }
}

#[test]
fn a_listed_namespace_gets_a_role_and_no_cluster_role() {
    let docs = render(&["ci/namespaced-values.yaml"], &[]);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    let namespace = "iot-plant-a";
    let role = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == namespace)
        .unwrap_or_else(|| panic!("no Role in {namespace}"));
    assert_eq!(grants(role), watch_grants());
    let binding = of_kind(&docs, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["namespace"] == namespace)
        .unwrap_or_else(|| panic!("no RoleBinding in {namespace}"));
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NAMESPACE);
}

#[test]
fn rbac_and_service_account_can_be_left_to_the_platform() {
    let docs = render(&["ci/existing-service-account-values.yaml"], &[]);
    assert!(of_kind(&docs, "ServiceAccount").is_empty());
    assert!(of_kind(&docs, "Role").is_empty() && of_kind(&docs, "ClusterRole").is_empty());
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "platform-managed-edgewatch");
    let image = pod["containers"][0]["image"].as_str().unwrap();
    assert!(image.contains("@sha256:"), "{image}");
}

// --- Workload identity -------------------------------------------------------------------

#[test]
fn workload_identity_renders_as_azure_documents_it() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let sa = one(&docs, "ServiceAccount");
    let annotations = &sa["metadata"]["annotations"];
    assert_eq!(
        annotations["azure.workload.identity/client-id"],
        "00000000-1111-2222-3333-444444444444"
    );
    assert_eq!(
        annotations["azure.workload.identity/tenant-id"],
        "55555555-6666-7777-8888-999999999999"
    );
    assert_eq!(
        annotations["azure.workload.identity/service-account-token-expiration"],
        "7200"
    );
    assert_eq!(annotations["example.com/owner"], "platform-team");
    let pod = &one(&docs, "Deployment")["spec"]["template"];
    // The webhook matches the label value "true" as a string.
    assert_eq!(
        pod["metadata"]["labels"]["azure.workload.identity/use"],
        Value::String("true".into())
    );
    assert_eq!(pod["spec"]["serviceAccountName"], sa["metadata"]["name"]);
}

#[test]
fn workload_identity_client_id_only_leaves_optional_annotations_out() {
    let docs = render(&["ci/workload-identity-values.yaml"], &[]);
    let annotations = one(&docs, "ServiceAccount")["metadata"]["annotations"]
        .as_object()
        .unwrap()
        .clone();
    let keys: Vec<&str> = annotations.keys().map(String::as_str).collect();
    assert_eq!(keys, ["azure.workload.identity/client-id"]);
}

#[test]
fn without_workload_identity_there_is_no_label_or_annotation() {
    let docs = render(&[], &[]);
    let sa = one(&docs, "ServiceAccount");
    assert!(sa["metadata"]["annotations"].is_null());
    let labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    assert!(labels["azure.workload.identity/use"].is_null());
}

#[test]
fn workload_identity_without_client_id_is_refused() {
    let err = try_render(&[], &["workloadIdentity.enabled=true"]).unwrap_err();
    assert!(err.contains("clientId"), "{err}");
}

// --- Values schema -----------------------------------------------------------------------

#[test]
fn unknown_values_are_refused() {
    let err = try_render(&[], &["operator.logLevl=debug"]).unwrap_err();
    assert!(err.contains("logLevl"), "{err}");
    let err = try_render(&[], &["prometheusRule.rules.EdgewatchTypo.for=5m"]).unwrap_err();
    assert!(err.contains("EdgewatchTypo"), "{err}");
}

/// Every object in the schema that names its properties also refuses others.
#[test]
fn schema_closes_every_object() {
    fn walk(node: &Value, path: &str) {
        match node {
            Value::Object(map) => {
                // `if`/`then` only add constraints to the object around them.
                if map.contains_key("properties")
                    && !path.ends_with("/if")
                    && !path.ends_with("/then")
                {
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{path} allows unknown keys"
                    );
                }
                for (key, child) in map {
                    walk(child, &format!("{path}/{key}"));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"));
                }
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(repo().join(CHART).join("values.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    walk(&schema, "");
}

// --- Metrics Service, ServiceMonitor, NetworkPolicy --------------------------------------

#[test]
fn service_monitor_scrapes_the_metrics_service() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let service = one(&docs, "Service");
    let monitor = one(&docs, "ServiceMonitor");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "label {key}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    // Alerts group by the watch's `namespace` label, which the target label would clobber.
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(of_kind(&render(&[], &[]), "ServiceMonitor").is_empty());
}

#[test]
fn network_policy_allows_only_dns_and_https_egress() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let policy = one(&docs, "NetworkPolicy");
    let mut ports = BTreeSet::new();
    for rule in policy["spec"]["egress"].as_array().unwrap() {
        assert!(
            !rule["to"].as_array().unwrap().is_empty(),
            "egress to anywhere: {rule}"
        );
        for port in rule["ports"].as_array().unwrap() {
            ports.insert(port["port"].as_u64().unwrap());
        }
    }
    // 6443 only because the all-features values add it for the API server endpoint.
    assert_eq!(ports, BTreeSet::from([53, 443, 6443]));
    let defaults = render(&[], &["networkPolicy.enabled=true"]);
    let mut default_ports = BTreeSet::new();
    for rule in one(&defaults, "NetworkPolicy")["spec"]["egress"]
        .as_array()
        .unwrap()
    {
        for port in rule["ports"].as_array().unwrap() {
            default_ports.insert(port["port"].as_u64().unwrap());
        }
    }
    assert_eq!(default_ports, BTreeSet::from([53, 443]));
}

// --- Alerts against the real /metrics output ---------------------------------------------

/// Binary-operator keywords and modifiers: never metric names.
const PROMQL_KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset"];

/// Keywords followed by an optional parenthesised list of label names.
const PROMQL_LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Aggregation operators, which may put `by (...)` between their name and `(`.
const PROMQL_AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// keywords, label names (inside `{}` or grouping clauses), durations or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_until = |from: usize, close: char| -> usize {
        let mut j = from;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (Some(q), '\\') if q != '`' => j += 1,
                (Some(q), c) if c == q => quote = None,
                (None, c @ ('"' | '\'' | '`')) => quote = Some(c),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_until(i + 1, '}');
        } else if c == '[' {
            i = skip_until(i + 1, ']');
        } else if matches!(c, '"' | '\'' | '`') {
            i = skip_until(i + 1, c);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest = chars[i..].iter().position(|c| !c.is_whitespace());
            let next = rest.map(|offset| (i + offset, chars[i + offset]));
            if PROMQL_LABEL_LISTS.contains(&word.as_str()) {
                if let Some((open, '(')) = next {
                    i = skip_until(open + 1, ')');
                }
            } else if PROMQL_KEYWORDS.contains(&word.as_str())
                || PROMQL_AGGREGATIONS.contains(&word.as_str())
                || matches!(next, Some((_, '(')))
            {
                // a keyword, an aggregation, or a function call
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_name_extraction_sees_through_functions_labels_and_ranges() {
    let names = metric_names(
        r#"sum by (hub) (rate(a_total{x="}", y=~"b.*"}[5m])) / on(hub) group_left c > 0.05 and absent(up{job="j"} == 1) offset 1h or count without (a) (d:rule) > bool 2e3"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["a_total".into(), "c".into(), "d:rule".into(), "up".into()])
    );
}

/// The sample names a running ops server really exports, from `/metrics` over HTTP, for a
/// registry filled with one watch, one device and one module (and every IoT Hub series).
async fn exported_names(module_metrics: bool) -> BTreeSet<String> {
    let metrics = Metrics::new(module_metrics);
    let (ns, watch, device, hub) = ("iot", "plant-a", "gw-1", "plant-a.azure-devices.net");
    metrics.set_watch_conditions(
        ns,
        watch,
        &[
            ("Ready", ConditionStatus::False),
            ("Stalled", ConditionStatus::True),
        ],
    );
    metrics.set_watch_device_counts(
        ns,
        watch,
        WatchDeviceCounts {
            total: 1,
            ..WatchDeviceCounts::default()
        },
    );
    metrics.set_device(
        ns,
        watch,
        device,
        ConditionStatus::False,
        ConditionStatus::False,
    );
    metrics.set_module(ns, watch, device, "tempSensor", false, 4);
    metrics.observe_reconcile(ns, watch, Duration::from_millis(40), Err("iothub"));
    metrics.status_written(ns, watch);
    metrics.set_leader(true);
    metrics.iothub_request(hub, "query", "throttled", Duration::from_millis(5));
    metrics.iothub_throttled(hub, "query");
    metrics.iothub_retried(hub, "query");
    metrics.iothub_billed(hub, "query", 3);
    let noon: jiff::Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    metrics.set_device_ready_transition(
        ns,
        watch,
        device,
        ConditionStatus::False,
        "ModuleFailed",
        noon,
    );
    metrics.set_watch_condition_transitions(
        ns,
        watch,
        &[("Ready", ConditionStatus::False, "ModuleFailed", noon)],
    );
    metrics.set_watch_interval(ns, watch, Duration::from_secs(60));

    let server = OpsServer::start("127.0.0.1:0".parse().unwrap(), metrics, Readiness::new())
        .await
        .unwrap();
    let url = format!("http://{}/metrics", server.local_addr());
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    server.shutdown().await.unwrap();
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

struct Alert {
    name: String,
    rule: Value,
}

fn alerts(docs: &[Value]) -> Vec<Alert> {
    let rule = one(docs, "PrometheusRule");
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| Alert {
            name: r["alert"].as_str().unwrap().to_owned(),
            rule: r.clone(),
        })
        .collect()
}

/// `(alert, name)` for every metric an alert selects that the operator does not export.
fn unexported_metrics(docs: &[Value], exported: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut unknown = Vec::new();
    for alert in alerts(docs) {
        let expr = alert.rule["expr"].as_str().unwrap();
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{}: no metric in {expr}", alert.name);
        for name in names {
            if name != "up" && !exported.contains(&name) {
                unknown.push((alert.name.clone(), name));
            }
        }
    }
    unknown
}

#[tokio::test]
async fn every_alert_expression_names_an_exported_metric() {
    let exported = exported_names(true).await;
    assert!(exported.contains("edgewatch_module_running"));
    let docs = render(&[], &["prometheusRule.enabled=true"]);
    assert_eq!(alerts(&docs).len(), 11);
    assert_eq!(unexported_metrics(&docs, &exported), []);

    let without_modules = exported_names(false).await;
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    assert_eq!(unexported_metrics(&docs, &without_modules), []);

    // The check is not vacuous: a misspelled name in an override is caught.
    let docs = render(
        &[],
        &[
            "prometheusRule.enabled=true",
            "prometheusRule.rules.EdgewatchDeviceUnreachable.expr=edgewatch_device_reachble == 0",
        ],
    );
    assert_eq!(
        unexported_metrics(&docs, &exported),
        [(
            "EdgewatchDeviceUnreachable".to_owned(),
            "edgewatch_device_reachble".to_owned()
        )]
    );
}

#[test]
fn module_alerts_are_left_out_when_module_metrics_are_off() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let names: Vec<String> = alerts(&docs).into_iter().map(|a| a.name).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("EdgewatchModule")),
        "{names:?}"
    );
    assert!(names.contains(&"EdgewatchWatchNotReady".to_owned()));
}

#[test]
fn every_alert_is_complete_and_links_a_runbook_section() {
    let runbook = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let anchors: BTreeSet<String> = runbook
        .split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(id, _)| id.to_owned())
        .collect();
    let docs = render(&[], &["prometheusRule.enabled=true"]);
    for alert in alerts(&docs) {
        let r = &alert.rule;
        assert!(
            matches!(
                r["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ),
            "{}",
            alert.name
        );
        assert!(
            r["for"].as_str().is_some_and(|f| !f.is_empty()),
            "{}",
            alert.name
        );
        for key in ["summary", "description"] {
            assert!(
                r["annotations"][key].as_str().is_some_and(|s| s.len() > 10),
                "{}: {key}",
                alert.name
            );
        }
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url.rsplit_once('#').unwrap().1;
        assert_eq!(anchor, alert.name.to_lowercase());
        assert!(
            anchors.contains(anchor),
            "README.md has no runbook anchor for {}",
            alert.name
        );
    }
}

#[test]
fn operator_down_alert_targets_this_release() {
    let docs = render(&[], &["prometheusRule.enabled=true"]);
    let alert = alerts(&docs)
        .into_iter()
        .find(|a| a.name == "EdgewatchOperatorDown")
        .unwrap();
    let service = one(&docs, "Service")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let expr = alert.rule["expr"].as_str().unwrap();
    assert!(expr.contains(&format!(r#"job="{service}""#)), "{expr}");
    assert!(
        expr.contains(&format!(r#"namespace="{RELEASE_NAMESPACE}""#)),
        "{expr}"
    );
}

#[test]
fn per_rule_overrides_disable_retime_and_rewrite() {
    let docs = render(&["ci/alert-overrides-values.yaml"], &[]);
    let all = alerts(&docs);
    assert!(!all.iter().any(|a| a.name == "EdgewatchModuleRestartLoop"));
    let unreachable = all
        .iter()
        .find(|a| a.name == "EdgewatchDeviceUnreachable")
        .unwrap();
    assert_eq!(unreachable.rule["for"], "1h");
    assert_eq!(unreachable.rule["labels"]["severity"], "critical");
    // Keys not overridden keep their defaults.
    assert_eq!(unreachable.rule["expr"], "edgewatch_device_reachable == 0");
    let errors = all
        .iter()
        .find(|a| a.name == "EdgewatchReconcileErrors")
        .unwrap();
    assert!(
        errors.rule["expr"]
            .as_str()
            .unwrap()
            .contains(r#"error!="throttled""#)
    );
}

#[test]
fn disabling_every_alert_renders_no_empty_rule() {
    let defaults = render(&[], &["prometheusRule.enabled=true"]);
    let names: Vec<String> = alerts(&defaults).into_iter().map(|a| a.name).collect();
    let sets: Vec<String> = std::iter::once("prometheusRule.enabled=true".to_owned())
        .chain(
            names
                .iter()
                .map(|n| format!("prometheusRule.rules.{n}.enabled=false")),
        )
        .collect();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    assert!(of_kind(&render(&[], &sets), "PrometheusRule").is_empty());
}

// --- kube-state-metrics ------------------------------------------------------------------

fn crd_schema_has_path(crd: &Value, path: &[&str]) -> bool {
    let mut node = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    for segment in path {
        node = &node["properties"][*segment];
        if node.is_null() {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn kube_state_metrics_config_reads_fields_the_crd_has() {
    let docs = render(&["ci/all-features-values.yaml"], &[]);
    let config_map = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["data"].get("config.yaml").is_some())
        .expect("the kube-state-metrics ConfigMap");
    let config: Value =
        serde_saphyr::from_str(config_map["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config["kind"], "CustomResourceStateMetrics");
    let crd_text = std::fs::read_to_string(
        repo()
            .join(CHART)
            .join("crds/edgewatch.dev_edgedevicewatches.yaml"),
    )
    .unwrap();
    let crd: Value = serde_saphyr::from_str(&crd_text).unwrap();
    let exported = exported_names(true).await;
    let resources = config["spec"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    let resource = &resources[0];
    let gvk = &resource["groupVersionKind"];
    assert_eq!(gvk["group"], crd["spec"]["group"]);
    assert_eq!(gvk["version"], crd["spec"]["versions"][0]["name"]);
    assert_eq!(gvk["kind"], crd["spec"]["names"]["kind"]);
    let prefix = resource["metricNamePrefix"].as_str().unwrap();
    for metric in resource["metrics"].as_array().unwrap() {
        let name = format!("{prefix}_{}", metric["name"].as_str().unwrap());
        assert!(
            !exported.contains(&name),
            "{name} collides with an operator metric"
        );
        let path = strings(&metric["each"]["gauge"]["path"]);
        if path[0] == "status" {
            assert!(
                crd_schema_has_path(&crd, &path),
                "{name}: the CRD has no {path:?}"
            );
        }
        if metric["each"]["gauge"]["valueFrom"] == serde_json::json!(["status"]) {
            // Conditions are metav1.Condition: type, status and reason exist on each item.
            let items = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
                ["properties"]["conditions"]["items"]["properties"];
            for field in ["type", "status", "reason"] {
                assert!(!items[field].is_null(), "conditions[] has no {field}");
            }
        }
    }
}

// --- Every rendered object is a well-formed Kubernetes object ----------------------------

/// Parses `doc` as the typed k8s-openapi object and serialises it back: a field name the
/// API does not know is dropped by the typed parse, a wrong type fails it. Without
/// kubeconform, this is the check that the chart writes real Kubernetes fields.
fn round_trip<K>(doc: &Value) -> Value
where
    K: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    serde_json::to_value(typed).unwrap()
}

#[test]
fn rendered_objects_only_use_fields_the_kubernetes_api_knows() {
    use k8s_openapi::api::{apps, core, networking, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let crd_text = std::fs::read_to_string(
        repo()
            .join(CHART)
            .join("crds/edgewatch.dev_edgedevicewatches.yaml"),
    )
    .unwrap();
    let crd: Value = serde_saphyr::from_str(&crd_text).unwrap();
    let mut value_files: Vec<Option<String>> = std::fs::read_dir(repo().join(CHART).join("ci"))
        .unwrap()
        .map(|entry| {
            Some(format!(
                "ci/{}",
                entry.unwrap().file_name().to_string_lossy()
            ))
        })
        .collect();
    value_files.push(None);
    assert!(value_files.len() >= 5);
    for file in &value_files {
        let values: Vec<&str> = file.iter().map(String::as_str).collect();
        let mut docs = render(&values, &[]);
        docs.push(crd.clone());
        for doc in &docs {
            let back = match doc["kind"].as_str().unwrap() {
                "Deployment" => round_trip::<apps::v1::Deployment>(doc),
                "Service" => round_trip::<core::v1::Service>(doc),
                "ServiceAccount" => round_trip::<core::v1::ServiceAccount>(doc),
                "ConfigMap" => round_trip::<core::v1::ConfigMap>(doc),
                "Role" => round_trip::<rbac::v1::Role>(doc),
                "RoleBinding" => round_trip::<rbac::v1::RoleBinding>(doc),
                "ClusterRole" => round_trip::<rbac::v1::ClusterRole>(doc),
                "ClusterRoleBinding" => round_trip::<rbac::v1::ClusterRoleBinding>(doc),
                "NetworkPolicy" => round_trip::<networking::v1::NetworkPolicy>(doc),
                "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(doc),
                // prometheus-operator kinds have no types here; their shape is checked above.
                "ServiceMonitor" | "PrometheusRule" => doc.clone(),
                other => panic!("{values:?}: the chart renders an unexpected kind {other}"),
            };
            assert_eq!(
                &back, doc,
                "{values:?}: {} {} has fields Kubernetes does not know",
                doc["kind"], doc["metadata"]["name"]
            );
        }
    }
}

// --- Grafana dashboard -------------------------------------------------------------------

const DASHBOARD: &str = "dashboards/edgewatch.json";
const DATASOURCE_VARIABLE: &str = "${datasource}";

fn dashboard_text() -> String {
    std::fs::read_to_string(repo().join(CHART).join(DASHBOARD)).unwrap()
}

fn dashboard() -> Value {
    serde_json::from_str(&dashboard_text()).expect("the dashboard is JSON")
}

/// Every panel, the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn variables(dashboard: &Value) -> &Vec<Value> {
    dashboard["templating"]["list"].as_array().unwrap()
}

/// `(where, PromQL)` for every expression the dashboard sends: each panel target's `expr`,
/// and the series selector of each query variable's `label_values(<selector>, <label>)`.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            queries.push((panel["title"].to_string(), expr.to_owned()));
        }
    }
    for variable in variables(dashboard).iter().filter(|v| v["type"] == "query") {
        let query = variable["query"].as_str().unwrap();
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.trim())
            .unwrap_or_else(|| panic!("${}: not label_values(...): {query}", variable["name"]));
        queries.push((format!("${}", variable["name"]), selector.to_owned()));
    }
    queries
}

/// The anchors a Markdown file defines: `<a id="...">` and its headings, as GitHub
/// spells them.
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        for part in line.split("<a id=\"").skip(1) {
            anchors.insert(part.split('"').next().unwrap().to_owned());
        }
        if let Some(heading) = line.strip_prefix('#') {
            let slug: String = heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect();
            anchors.insert(slug);
        }
    }
    anchors
}

#[test]
fn every_dashboard_panel_has_a_title_and_the_datasource_variable() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap() >= 37,
        "Grafana 10+"
    );
    let datasource = &variables(&dashboard)[0];
    assert_eq!(
        (
            &datasource["name"],
            &datasource["type"],
            &datasource["query"]
        ),
        (
            &"datasource".into(),
            &"datasource".into(),
            &"prometheus".into()
        )
    );
    for name in ["namespace", "watch", "hub"] {
        let variable = variables(&dashboard)
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"));
        assert_eq!(
            variable["datasource"]["uid"], DATASOURCE_VARIABLE,
            "${name}"
        );
        assert_eq!(variable["includeAll"], true, "${name}");
    }

    let panels = panels(&dashboard);
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.trim().is_empty(), "a panel without a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id repeated"
        );
        assert_eq!(panel["datasource"]["uid"], DATASOURCE_VARIABLE, "{title}");
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title}: say what the panel shows"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], DATASOURCE_VARIABLE, "{title}");
        }
    }
    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Devices watched",
        "Watches",
        "Not-Ready devices by reason",
        "Not-Ready devices",
        "Device Ready transitions",
        "Sweep duration against interval",
        "IoT Hub calls by operation and result",
        "Throttling (429) and retries",
        "IoT Hub errors by kind",
        "Billed messages per hub per day",
        "Leader",
        "Reconcile errors by kind",
        "Operator restarts",
    ] {
        assert!(titles.contains(wanted), "no panel {wanted:?}: {titles:?}");
    }

    // Every runbook link lands on a section of the README.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let anchors = markdown_anchors(&readme);
    let links = panels
        .iter()
        .flat_map(|p| p["links"].as_array().into_iter().flatten())
        .chain(dashboard["links"].as_array().unwrap());
    for link in links {
        let url = link["url"].as_str().unwrap();
        let anchor = url.rsplit_once("README.md#").map(|(_, a)| a).unwrap();
        assert!(anchors.contains(anchor), "{url}: no such README section");
    }
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let dashboard = dashboard();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() > 30, "{}", queries.len());
    // It works without per-module series too (`operator.moduleMetrics: false`).
    let exported = exported_names(false).await;
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr:?}");
        for name in names {
            if !exported.contains(&name) {
                unknown.push((place.clone(), name.clone()));
            }
            used.insert(name);
        }
    }
    assert_eq!(unknown, Vec::<(String, String)>::new());
    for name in [
        "edgewatch_iothub_billed_messages_total",
        "edgewatch_device_ready_last_transition_timestamp_seconds",
        "edgewatch_watch_interval_seconds",
        "edgewatch_process_start_time_seconds",
        "edgewatch_leader",
    ] {
        assert!(used.contains(name), "{name} unused: {used:?}");
    }
    // The check is not vacuous: a misspelled name is caught.
    let typo = metric_names("sum by (hub) (increase(edgewatch_iothub_billed_mesages_total[1d]))");
    assert!(typo.iter().any(|name| !exported.contains(name)), "{typo:?}");
}

#[test]
fn the_dashboard_configmap_carries_the_json_unchanged() {
    let text = dashboard_text();
    let dashboards = |docs: &[Value]| -> Vec<Value> {
        of_kind(docs, "ConfigMap")
            .into_iter()
            .filter(|c| c["data"].get("edgewatch.json").is_some())
            .cloned()
            .collect()
    };
    assert!(dashboards(&render(&[], &[])).is_empty(), "off by default");

    let docs = render(&[], &["grafanaDashboard.enabled=true"]);
    let found = dashboards(&docs);
    assert_eq!(found.len(), 1);
    let map = &found[0];
    assert_eq!(map["metadata"]["name"], "edgewatch-dashboard");
    assert_eq!(map["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        map["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "edgewatch"
    );
    assert!(
        map["data"]["edgewatch.json"].as_str() == Some(text.as_str()),
        "the ConfigMap's dashboard differs from {DASHBOARD}"
    );

    let docs = render(&["ci/grafana-dashboard-values.yaml"], &[]);
    let map = &dashboards(&docs)[0];
    let labels = &map["metadata"]["labels"];
    assert_eq!(labels["example.com/grafana-dashboard"], "edgewatch");
    assert!(labels.get("grafana_dashboard").is_none(), "{labels}");
    assert_eq!(labels["team"], "edge");
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    assert_eq!(map["metadata"]["annotations"]["grafana_folder"], "Edge");
    assert!(map["data"]["edgewatch.json"].as_str() == Some(text.as_str()));
}
