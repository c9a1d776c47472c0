//! The checked-in CRD on the real kube-apiserver 1.35: accepted by `kubectl apply
//! --server-side` (every CEL rule compiles within the cost budget), every CEL case of
//! `tests/support/cel_cases.rs` answered as kube's client-side evaluation answers it, and
//! the code's defaults applied by the server.

#[path = "support/cel_cases.rs"]
mod cel_cases;
#[path = "support/kube_cluster/mod.rs"]
mod kube_cluster;

use edgewatch::api::{EdgeDeviceWatch, EdgeDeviceWatchSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, Resource};
use kube_cluster::{CRD_FILE, CRD_NAME, shared, tools};
use serde_json::Value;

#[tokio::test]
async fn the_crd_is_accepted_by_kubectl_apply_server_side_without_warnings() {
    let cluster = shared();
    cluster.install_crd();
    let file = tools::repo().join(CRD_FILE);
    let out = cluster
        .kubectl()
        .run(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} serverside-applied")
    );
    assert!(stderr.trim().is_empty(), "the server warned: {stderr}");

    let crd = Api::<CustomResourceDefinition>::all(cluster.client().await)
        .get(CRD_NAME)
        .await
        .unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap_or_default();
    for (kind, status) in [("Established", "True"), ("NamesAccepted", "True")] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == kind && c.status == status),
            "{kind} is not {status}: {conditions:?}"
        );
    }
    assert!(
        !conditions.iter().any(|c| c.type_ == "NonStructuralSchema"),
        "{conditions:?}"
    );
}

#[tokio::test]
async fn the_server_keeps_every_cel_rule_of_the_generated_crd() {
    let cluster = shared();
    cluster.install_crd();
    let stored = Api::<CustomResourceDefinition>::all(cluster.client().await)
        .get(CRD_NAME)
        .await
        .unwrap();
    // Rules compared as a sorted list: the duration minimum is one message on two fields.
    let mut stored = cel_cases::rule_messages(&serde_json::to_value(&stored.spec).unwrap());
    stored.sort();
    let mut generated = cel_cases::crd_rule_messages();
    generated.sort();
    assert_eq!(stored.len(), 7, "{stored:#?}");
    assert_eq!(stored, generated);
}

#[tokio::test]
async fn every_cel_case_gets_the_same_answer_from_the_real_server() {
    let cluster = shared();
    cluster.install_crd();
    let namespace = cluster.create_namespace("cel").await;
    let api: Api<EdgeDeviceWatch> = Api::namespaced(cluster.client().await, &namespace);
    let mut wrong = Vec::new();
    for (index, case) in cel_cases::cel_cases().into_iter().enumerate() {
        let watch = EdgeDeviceWatch::new(&format!("case-{index}"), case.spec.clone());
        let answer = api.create(&PostParams::default(), &watch).await;
        match (case.server_refusal(), answer) {
            (None, Ok(_)) => {}
            (None, Err(e)) => wrong.push(format!("{}: refused: {e}", case.name)),
            (Some(message), Ok(_)) => {
                wrong.push(format!("{}: accepted, expected {message:?}", case.name));
            }
            (Some(message), Err(kube::Error::Api(status))) => {
                if status.code != 422
                    || !status.message.contains(message)
                    || !case.names_its_field(&status.message)
                {
                    wrong.push(format!(
                        "{}: expected 422 with {message:?}, got {} {:?}",
                        case.name, status.code, status.message
                    ));
                }
            }
            (Some(_), Err(e)) => wrong.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The watch as a user writes it: only the hub and the devices.
const MINIMAL_SPEC: &str = r#"{
    "hub": {"connectionStringSecretRef": {"name": "plant-a-iothub", "key": "connectionString"}},
    "devices": ["line1-gw", "line2-gw"]
}"#;

fn dynamic_api(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<EdgeDeviceWatch>(&());
    Api::namespaced_with(client, namespace, &resource)
}

#[tokio::test]
async fn the_server_applies_the_same_defaults_as_the_code() {
    let cluster = shared();
    cluster.install_crd();
    let namespace = cluster.create_namespace("defaults").await;
    let minimal: Value = serde_json::from_str(MINIMAL_SPEC).unwrap();
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": EdgeDeviceWatch::api_version(&()),
        "kind": EdgeDeviceWatch::kind(&()),
        "metadata": {"name": "minimal"},
        "spec": minimal,
    }))
    .unwrap();
    let created = dynamic_api(cluster.client().await, &namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();

    let by_server = created.data["spec"].clone();
    let by_code: EdgeDeviceWatchSpec = serde_json::from_value(minimal.clone()).unwrap();
    let by_code = serde_json::to_value(by_code).unwrap();
    assert_eq!(by_server, by_code);
    // Not vacuous: the server added fields the user did not write.
    assert!(by_server["ping"]["interval"].is_string() && minimal.get("ping").is_none());
}

#[tokio::test]
async fn the_minimal_example_applies_and_reads_back_with_defaults() {
    let cluster = shared();
    cluster.install_crd();
    let namespace = cluster.create_namespace("example").await;
    let example = std::fs::read_to_string(tools::repo().join("examples/watch-minimal.yaml"))
        .expect("examples/watch-minimal.yaml");
    let mut example: Value = serde_saphyr::from_str(&example).expect("the example is YAML");
    example["metadata"]["namespace"] = namespace.clone().into();
    let out = cluster.kubectl().apply(&example.to_string());
    assert!(out.contains("serverside-applied"), "{out}");
    let watch = Api::<EdgeDeviceWatch>::namespaced(cluster.client().await, &namespace)
        .get("plant-a-gateways")
        .await
        .unwrap();
    assert_eq!(watch.spec.interval, "60s");
    assert!(watch.spec.ping.enabled);
}

#[tokio::test]
async fn a_misspelled_field_is_refused_by_kubectl_apply() {
    let cluster = shared();
    cluster.install_crd();
    let namespace = cluster.create_namespace("unknown-field").await;
    let manifest = r#"{
        "apiVersion": "edgewatch.dev/v1alpha1", "kind": "EdgeDeviceWatch",
        "metadata": {"name": "typo"},
        "spec": {
            "hub": {"connectionStringSecretRef": {"name": "hub", "key": "connectionString"}},
            "devices": ["gw-1"],
            "intervall": "5m"
        }
    }"#;
    let out = cluster.kubectl().run_with_input(
        &["apply", "--server-side", "-n", &namespace, "-f", "-"],
        manifest,
    );
    assert!(!out.status.success(), "a misspelled field was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("intervall"), "{stderr}");
}

#[tokio::test]
async fn a_malformed_duration_is_refused_with_the_pattern() {
    let cluster = shared();
    cluster.install_crd();
    let namespace = cluster.create_namespace("duration").await;
    let mut spec: EdgeDeviceWatchSpec = serde_json::from_str(MINIMAL_SPEC).unwrap();
    spec.stale_after = "ten minutes".into();
    let refused = Api::<EdgeDeviceWatch>::namespaced(cluster.client().await, &namespace)
        .create(&PostParams::default(), &EdgeDeviceWatch::new("bad", spec))
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert!(status.message.contains("spec.staleAfter"), "{status:?}");
        }
        other => panic!("a malformed duration was accepted: {other:?}"),
    }
}
