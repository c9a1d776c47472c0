//! The stand-in's object semantics, exercised through real kube-rs calls: CRUD, selectors,
//! resourceVersion preconditions, generation, the status subresource, patches and apply.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;
use support::k8s_standin::StandIn;
use support::k8s_standin::sample::{Gadget, condition, gadget};

async fn standin_with_gadgets() -> (StandIn, Api<Gadget>) {
    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let api = Api::namespaced(standin.client(), "default");
    (standin, api)
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn labelled_secret(namespace: &str, name: &str, tier: &str) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
    secret
}

#[tokio::test]
async fn create_get_list_across_namespaces_with_selectors() {
    let standin = StandIn::start().await;
    let client = standin.client();
    for (ns, name, tier) in [
        ("a", "one", "gold"),
        ("a", "two", "silver"),
        ("b", "three", "gold"),
    ] {
        Api::<Secret>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &labelled_secret(ns, name, tier))
            .await
            .unwrap();
    }

    let in_a = Api::<Secret>::namespaced(client.clone(), "a");
    let all = Api::<Secret>::all(client.clone());
    let names = |list: kube::core::ObjectList<Secret>| {
        list.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(in_a.list(&ListParams::default()).await.unwrap()),
        ["one", "two"]
    );
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()).len(),
        3
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier=gold"))
                .await
                .unwrap()
        ),
        ["one", "three"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier notin (gold)"))
                .await
                .unwrap()
        ),
        ["two"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.name=three"))
                .await
                .unwrap()
        ),
        ["three"]
    );
    assert_eq!(
        names(in_a.list(&ListParams::default().limit(1)).await.unwrap()).len(),
        2,
        "limit is ignored, not broken"
    );

    let fetched = in_a.get("one").await.unwrap();
    assert!(fetched.metadata.uid.is_some());
    assert!(fetched.metadata.creation_timestamp.is_some());
    assert!(fetched.metadata.resource_version.is_some());
    assert_eq!(
        fetched.metadata.generation, None,
        "Secrets do not track generation"
    );

    let unsupported = api_error(all.list(&ListParams::default().fields("spec.nope=1")).await);
    assert_eq!(
        (unsupported.code, unsupported.reason.as_str()),
        (400, "BadRequest")
    );
    let malformed = api_error(
        all.list(&ListParams::default().labels("tier in gold"))
            .await,
    );
    assert_eq!(malformed.code, 400);
}

#[tokio::test]
async fn errors_are_kubernetes_status_objects() {
    let (standin, api) = standin_with_gadgets().await;
    let missing = api_error(api.get("absent").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "gadgets \"absent\" not found");

    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let duplicate = api_error(
        api.create(&PostParams::default(), &gadget("default", "g", 1))
            .await,
    );
    assert_eq!(
        (duplicate.code, duplicate.reason.as_str()),
        (409, "AlreadyExists")
    );

    let raw = reqwest::get(format!(
        "{}/apis/example.test/v1/namespaces/default/gadgets/absent",
        standin.url()
    ))
    .await
    .unwrap();
    assert_eq!(raw.status(), 404);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");

    let unknown = reqwest::get(format!(
        "{}/apis/example.test/v1/namespaces/default/sprockets",
        standin.url()
    ))
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn stale_resource_version_conflicts_on_replace_and_patch() {
    let (_standin, api) = standin_with_gadgets().await;
    let created = api
        .create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();

    let mut first = created.clone();
    first.spec.size = 2;
    let replaced = api
        .replace("g", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(replaced.resource_version(), created.resource_version());

    let mut stale = created.clone();
    stale.spec.size = 3;
    let conflict = api_error(api.replace("g", &PostParams::default(), &stale).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));

    let stale_patch =
        json!({"metadata": {"resourceVersion": created.resource_version()}, "spec": {"size": 4}});
    let conflict = api_error(
        api.patch("g", &PatchParams::default(), &Patch::Merge(&stale_patch))
            .await,
    );
    assert_eq!(conflict.reason, "Conflict");

    let mut unconditional = replaced.clone();
    unconditional.metadata.resource_version = None;
    let invalid = api_error(
        api.replace("g", &PostParams::default(), &unconditional)
            .await,
    );
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert_eq!(api.get("g").await.unwrap().spec.size, 2);
}

#[tokio::test]
async fn generation_follows_spec_but_not_status() {
    let (_standin, api) = standin_with_gadgets().await;
    let created = api
        .create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let status = json!({"status": {"phase": "Ready"}});
    let after_status = api
        .patch_status("g", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after_status.metadata.generation, Some(1));
    assert_eq!(after_status.status.unwrap().phase.as_deref(), Some("Ready"));

    let labels = json!({"metadata": {"labels": {"x": "y"}}});
    let after_labels = api
        .patch("g", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(
        after_labels.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    let spec = json!({"spec": {"size": 5}});
    let after_spec = api
        .patch("g", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(after_spec.metadata.generation, Some(2));

    let same_spec = api
        .patch("g", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(same_spec.metadata.generation, Some(2));
    assert_eq!(
        same_spec.resource_version(),
        after_spec.resource_version(),
        "a no-op patch writes nothing"
    );
}

#[tokio::test]
async fn status_subresource_and_main_resource_only_touch_their_part() {
    let (_standin, api) = standin_with_gadgets().await;
    let mut with_status = gadget("default", "g", 1);
    with_status.status = Some(Default::default());
    with_status.status.as_mut().unwrap().phase = Some("Smuggled".into());
    let created = api
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(created.status, None, "status is dropped on create");

    let both = json!({"spec": {"size": 9}, "status": {"phase": "Ignored"}});
    let main = api
        .patch("g", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .unwrap();
    assert_eq!(main.spec.size, 9);
    assert_eq!(main.status, None, "main-resource patches ignore .status");

    let both = json!({"spec": {"size": 1}, "status": {"phase": "Ready"}});
    let status = api
        .patch_status("g", &PatchParams::default(), &Patch::Merge(&both))
        .await
        .unwrap();
    assert_eq!(status.spec.size, 9, "status patches ignore .spec");
    assert_eq!(status.status.unwrap().phase.as_deref(), Some("Ready"));

    let fetched = api.get_status("g").await.unwrap();
    assert_eq!(
        fetched.status.as_ref().unwrap().phase.as_deref(),
        Some("Ready")
    );

    let mut replacement = fetched.clone();
    replacement.status.as_mut().unwrap().phase = Some("Replaced".into());
    replacement.spec.size = 100;
    let replaced = api
        .replace_status("g", &PostParams::default(), &replacement)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Replaced"));
    assert_eq!(replaced.spec.size, 9, "a status PUT ignores .spec");
    let stale = api_error(
        api.replace_status("g", &PostParams::default(), &replacement)
            .await,
    );
    assert_eq!(
        stale.reason, "Conflict",
        "status PUTs honour resourceVersion too"
    );
}

#[tokio::test]
async fn apply_on_status_merges_conditions_by_type_and_prunes_what_was_dropped() {
    let (standin, api) = standin_with_gadgets().await;
    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let params = PatchParams::apply("edgewatch").force();

    let manual = json!({"status": {"conditions": [condition("Manual", "True", "SetByHand")]}});
    api.patch_status("g", &PatchParams::default(), &Patch::Merge(&manual))
        .await
        .unwrap();

    let two = json!({
        "apiVersion": "example.test/v1", "kind": "Gadget",
        "status": {"phase": "Ready", "conditions": [condition("Ready", "True", "AllGood"), condition("Degraded", "False", "AllGood")]},
    });
    let applied = api
        .patch_status("g", &params, &Patch::Apply(&two))
        .await
        .unwrap();
    let types = |g: &Gadget| {
        g.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .map(|c| c.type_.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types(&applied),
        ["Manual", "Ready", "Degraded"],
        "apply merges into the list-map by type"
    );
    assert_eq!(applied.metadata.generation, Some(1));

    let again = api
        .patch_status("g", &params, &Patch::Apply(&two))
        .await
        .unwrap();
    assert_eq!(
        again.resource_version(),
        applied.resource_version(),
        "re-applying the same status is a no-op"
    );

    let flipped = json!({
        "apiVersion": "example.test/v1", "kind": "Gadget",
        "status": {"phase": "Ready", "conditions": [condition("Ready", "False", "ModuleDown")]},
    });
    let after = api
        .patch_status("g", &params, &Patch::Apply(&flipped))
        .await
        .unwrap();
    assert_eq!(
        types(&after),
        ["Manual", "Ready"],
        "the applier's dropped condition is pruned, others stay"
    );
    let ready = &after.status.as_ref().unwrap().conditions[1];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ModuleDown")
    );
    assert_eq!(standin.status_patches("gadgets", "default", "g"), 4);

    let missing = api_error(
        api.patch_status("absent", &params, &Patch::Apply(&flipped))
            .await,
    );
    assert_eq!(
        missing.code, 404,
        "apply to the status of a missing object does not create it"
    );
}

#[tokio::test]
async fn apply_conflicts_between_managers_unless_forced() {
    let (_standin, api) = standin_with_gadgets().await;
    let body = |size: i32| json!({"apiVersion": "example.test/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"size": size}});
    let created = api
        .patch("g", &PatchParams::apply("alice"), &Patch::Apply(&body(1)))
        .await
        .unwrap();
    assert_eq!(created.spec.size, 1, "apply creates a missing object");

    let same_value = api
        .patch("g", &PatchParams::apply("bob"), &Patch::Apply(&body(1)))
        .await;
    assert!(same_value.is_ok(), "agreeing on a value is not a conflict");

    let conflict = api_error(
        api.patch("g", &PatchParams::apply("carol"), &Patch::Apply(&body(2)))
            .await,
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict.message.contains(".spec.size"),
        "{}",
        conflict.message
    );

    let forced = api
        .patch(
            "g",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(&body(2)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.size, 2);
    assert_eq!(forced.metadata.generation, Some(2));

    let now_alice_conflicts = api_error(
        api.patch("g", &PatchParams::apply("alice"), &Patch::Apply(&body(3)))
            .await,
    );
    assert_eq!(now_alice_conflicts.reason, "Conflict");

    let untyped = json!({"spec": {"size": 5}});
    let rejected = api_error(
        api.patch("g", &PatchParams::apply("alice"), &Patch::Apply(&untyped))
            .await,
    );
    assert_eq!(rejected.code, 400, "apply bodies need apiVersion and kind");
}

#[tokio::test]
async fn json_patch_strategic_patch_and_delete() {
    let (standin, api) = standin_with_gadgets().await;
    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/example.test/v1/namespaces/default/gadgets/g",
        standin.url()
    );
    let json_patch = |ops: serde_json::Value| {
        http.patch(&url)
            .header("content-type", "application/json-patch+json")
            .body(ops.to_string())
            .send()
    };
    let ops = json!([
        {"op": "test", "path": "/spec/size", "value": 1},
        {"op": "replace", "path": "/spec/size", "value": 7},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.test/cleanup"]},
    ]);
    assert_eq!(json_patch(ops).await.unwrap().status(), 200);
    assert_eq!(api.get("g").await.unwrap().spec.size, 7);

    let failing = json_patch(json!([{"op": "test", "path": "/spec/size", "value": 1}]))
        .await
        .unwrap();
    assert_eq!(failing.status(), 422);
    let bad_pointer = json_patch(json!([{"op": "remove", "path": "/spec/nothing"}]))
        .await
        .unwrap();
    assert_eq!(bad_pointer.status(), 422);
    let not_a_list = json_patch(json!({"op": "remove"})).await.unwrap();
    assert_eq!(not_a_list.status(), 400);

    let strategic = api_error(
        api.patch(
            "g",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 2}})),
        )
        .await,
    );
    assert_eq!(
        strategic.code, 415,
        "custom resources do not take strategic merge patches"
    );

    api.delete("g", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("g").await.unwrap();
    assert!(
        terminating.metadata.deletion_timestamp.is_some(),
        "finalizers hold the object"
    );

    let release = json!({"metadata": {"finalizers": null}});
    api.patch("g", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    assert_eq!(
        api_error(api.get("g").await).code,
        404,
        "removing the last finalizer deletes it"
    );
}

#[tokio::test]
async fn fields_the_crd_schema_does_not_declare_are_pruned() {
    let (standin, api) = standin_with_gadgets().await;
    let body = json!({
        "apiVersion": "example.test/v1", "kind": "Gadget",
        "metadata": {"name": "g", "labels": {"kept": "yes"}},
        "spec": {"size": 1, "colour": "red"},
        "surprise": true,
    });
    let created = api
        .patch("g", &PatchParams::apply("alice"), &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(
        created.labels().get("kept").map(String::as_str),
        Some("yes")
    );

    let mut condition = serde_json::to_value(condition("Ready", "True", "AllGood")).unwrap();
    condition["extra"] = json!("dropped");
    let status = json!({"status": {"phase": "Ready", "undeclared": 1, "conditions": [condition]}});
    api.patch_status("g", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let stored = standin
        .get_json("example.test/v1", "Gadget", Some("default"), "g")
        .unwrap();
    assert_eq!(stored["spec"], json!({"size": 1}));
    assert!(stored.get("surprise").is_none());
    assert!(stored["status"].get("undeclared").is_none());
    assert!(stored["status"]["conditions"][0].get("extra").is_none());
    assert_eq!(stored["status"]["conditions"][0]["reason"], "AllGood");
}

#[tokio::test]
async fn malformed_requests_get_clear_status_errors() {
    let (standin, api) = standin_with_gadgets().await;
    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!(
        "{}/apis/example.test/v1/namespaces/default/gadgets",
        standin.url()
    );
    let send =
        |method: reqwest::Method, url: String, content_type: &'static str, body: &'static str| {
            http.request(method, url)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
    let cases = [
        (
            send(
                reqwest::Method::POST,
                base.clone(),
                "application/json",
                "{not json",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::POST,
                base.clone(),
                "application/json",
                "[1, 2]",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::POST,
                base.clone(),
                "application/json",
                r#"{"kind": "Secret"}"#,
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::POST,
                base.clone(),
                "application/json",
                r#"{"spec": {}}"#,
            )
            .await,
            422,
            "Invalid",
        ),
        (
            send(
                reqwest::Method::PATCH,
                format!("{base}/g"),
                "application/merge-patch+json",
                "[]",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::PATCH,
                format!("{base}/g"),
                "application/merge-patch+json",
                r#"{"metadata": {"name": "h"}}"#,
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::PATCH,
                format!("{base}/g"),
                "application/apply-patch+yaml",
                "spec: {size: 2}",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::PATCH,
                format!("{base}/g?fieldManager=x"),
                "application/apply-patch+yaml",
                "spec: [unclosed",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::PATCH,
                format!("{base}/g"),
                "text/plain",
                "size=2",
            )
            .await,
            415,
            "UnsupportedMediaType",
        ),
        (
            send(
                reqwest::Method::PATCH,
                base.clone(),
                "application/merge-patch+json",
                "{}",
            )
            .await,
            405,
            "MethodNotAllowed",
        ),
        (
            send(
                reqwest::Method::GET,
                format!("{base}?watch=true&resourceVersion=abc"),
                "application/json",
                "",
            )
            .await,
            400,
            "BadRequest",
        ),
        (
            send(
                reqwest::Method::GET,
                format!("{base}/g/scale"),
                "application/json",
                "",
            )
            .await,
            404,
            "NotFound",
        ),
    ];
    for (index, (response, code, reason)) in cases.into_iter().enumerate() {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), code, "case {index}");
        let status: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            (status["kind"].as_str(), status["reason"].as_str()),
            (Some("Status"), Some(reason)),
            "case {index}"
        );
    }

    let yaml = "apiVersion: example.test/v1\nkind: Gadget\nspec:\n  size: 6\n";
    let applied = send(
        reqwest::Method::PATCH,
        format!("{base}/g?fieldManager=yaml-user&force=true"),
        "application/apply-patch+yaml",
        yaml,
    )
    .await
    .unwrap();
    assert_eq!(applied.status(), 200, "YAML apply bodies are accepted");
    assert_eq!(api.get("g").await.unwrap().spec.size, 6);
}
