//! The stand-in under kube-runtime and friends: watches (raw and through `watcher`), bookmarks,
//! 410 Expired, the event `Recorder`, `kube-lease-manager` leader election, fault injection,
//! kubeconfig and discovery.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{CustomResourceExt, Resource, ResourceExt};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use serde_json::json;
use support::k8s_standin::sample::{Gadget, gadget};
use support::k8s_standin::{Fault, Options, StandIn};

const PATIENCE: Duration = Duration::from_secs(10);

async fn next<T>(stream: &mut (impl futures::Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("stream produced an item in time")
        .expect("stream still open")
}

fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.into());
    secret.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    secret
}

#[tokio::test]
async fn raw_watch_streams_added_modified_deleted_from_a_resource_version() {
    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let api: Api<Gadget> = Api::namespaced(standin.client(), "default");
    let before = api
        .create(&PostParams::default(), &gadget("default", "old", 1))
        .await
        .unwrap();

    let mut events = api
        .watch(&WatchParams::default(), &before.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let status = json!({"status": {"phase": "Ready"}});
    api.patch_status("g", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    api.delete("g", &DeleteParams::default()).await.unwrap();

    match next(&mut events).await.unwrap() {
        WatchEvent::Added(g) => assert_eq!(
            g.name_any(),
            "g",
            "the object created before the watch is not replayed"
        ),
        other => panic!("expected ADDED, got {other:?}"),
    }
    match next(&mut events).await.unwrap() {
        WatchEvent::Modified(g) => assert_eq!(g.status.unwrap().phase.as_deref(), Some("Ready")),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    match next(&mut events).await.unwrap() {
        WatchEvent::Deleted(g) => assert_eq!(g.name_any(), "g"),
        other => panic!("expected DELETED, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_filters_by_namespace_and_labels() {
    let standin = StandIn::start().await;
    let client = standin.client();
    let all: Api<Secret> = Api::all(client.clone());
    let mut events = all
        .watch(&WatchParams::default().labels("app=edgewatch"), "0")
        .await
        .unwrap()
        .boxed();
    Api::<Secret>::namespaced(client.clone(), "a")
        .create(
            &PostParams::default(),
            &secret("ignored", &[("app", "other")]),
        )
        .await
        .unwrap();
    Api::<Secret>::namespaced(client.clone(), "b")
        .create(
            &PostParams::default(),
            &secret("wanted", &[("app", "edgewatch")]),
        )
        .await
        .unwrap();
    match next(&mut events).await.unwrap() {
        WatchEvent::Added(s) => assert_eq!(
            (s.namespace().as_deref(), s.name_any().as_str()),
            (Some("b"), "wanted")
        ),
        other => panic!("expected ADDED, got {other:?}"),
    }

    let mut in_a = Api::<Secret>::namespaced(client.clone(), "a")
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    match next(&mut in_a).await.unwrap() {
        WatchEvent::Added(s) => assert_eq!(
            s.name_any(),
            "ignored",
            "resourceVersion 0 replays current objects"
        ),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn too_old_resource_version_gets_410_expired_and_bookmarks_carry_the_latest() {
    let standin = StandIn::start_with(Options {
        history_limit: 2,
        bookmark_interval: Duration::from_millis(50),
    })
    .await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    let first = api
        .create(&PostParams::default(), &secret("s0", &[]))
        .await
        .unwrap();
    for i in 1..5 {
        api.create(&PostParams::default(), &secret(&format!("s{i}"), &[]))
            .await
            .unwrap();
    }

    let mut expired = api
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    match next(&mut expired).await.unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }

    let latest = standin.resource_version().to_string();
    let mut bookmarks = api
        .watch(&WatchParams::default(), &latest)
        .await
        .unwrap()
        .boxed();
    match next(&mut bookmarks).await.unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, latest),
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_ends_at_timeout_seconds() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    let started = std::time::Instant::now();
    let mut events = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("stream ended in time");
    assert!(
        end.is_none(),
        "no events, then the server closes the stream"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn kube_runtime_watcher_sees_initial_list_then_changes() {
    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let api: Api<Gadget> = Api::all(standin.client());
    let namespaced: Api<Gadget> = Api::namespaced(standin.client(), "edge");
    namespaced
        .create(&PostParams::default(), &gadget("edge", "existing", 1))
        .await
        .unwrap();

    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(g) => initial.push(g.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?} during the initial list"),
        }
    }
    assert_eq!(initial, ["existing"]);

    namespaced
        .create(&PostParams::default(), &gadget("edge", "new", 1))
        .await
        .unwrap();
    let spec = json!({"spec": {"size": 3}});
    namespaced
        .patch("new", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    namespaced
        .delete("existing", &DeleteParams::default())
        .await
        .unwrap();
    match next(&mut stream).await.unwrap() {
        watcher::Event::Apply(g) => assert_eq!((g.name_any().as_str(), g.spec.size), ("new", 1)),
        other => panic!("expected Apply, got {other:?}"),
    }
    match next(&mut stream).await.unwrap() {
        watcher::Event::Apply(g) => assert_eq!((g.spec.size, g.metadata.generation), (3, Some(2))),
        other => panic!("expected Apply, got {other:?}"),
    }
    match next(&mut stream).await.unwrap() {
        watcher::Event::Delete(g) => assert_eq!(g.name_any(), "existing"),
        other => panic!("expected Delete, got {other:?}"),
    }
    let watches =
        standin.count_requests(|r| r.is_watch() && r.path == "/apis/example.test/v1/gadgets");
    assert_eq!(watches, 1, "one all-namespaces watch after one list");
}

#[tokio::test]
async fn recorder_creates_an_event_then_patches_it_on_repeat() {
    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let api: Api<Gadget> = Api::namespaced(standin.client(), "default");
    let target = api
        .create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let recorder = Recorder::new(
        standin.client(),
        Reporter {
            controller: "edgewatch".into(),
            instance: Some("edgewatch-0".into()),
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "ModuleFailed".into(),
        note: Some("device dev-1 module tempSensor: backoff".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = target.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();

    let events = standin.events(Some("default"));
    assert_eq!(events.len(), 1, "a repeat patches the same Event");
    let stored = &events[0];
    assert_eq!(stored.reason.as_deref(), Some("ModuleFailed"));
    assert_eq!(stored.type_.as_deref(), Some("Warning"));
    assert_eq!(
        stored.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("g")
    );
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(2));

    let path = "/apis/events.k8s.io/v1/namespaces/default/events";
    assert_eq!(
        standin.count_requests(|r| r.method == "POST" && r.path == path && r.status == 201),
        1
    );
    assert_eq!(
        standin.count_requests(|r| r.method == "PATCH"
            && r.path.starts_with(path)
            && r.content_type.as_deref() == Some("application/merge-patch+json")
            && r.status == 200),
        1
    );

    let by_reason =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(standin.client(), "default")
            .list(&kube::api::ListParams::default().fields("reason=ModuleFailed,regarding.name=g"))
            .await
            .unwrap();
    assert_eq!(by_reason.items.len(), 1);
}

async fn lease_manager(standin: &StandIn, identity: &str) -> LeaseManager {
    LeaseManagerBuilder::new(standin.client(), "edgewatch-leader")
        .with_namespace("default")
        .with_identity(identity)
        .with_duration(2)
        .with_grace(1)
        .build()
        .await
        .unwrap()
}

fn holder(standin: &StandIn) -> Option<String> {
    standin
        .get_object::<Lease>(Some("default"), "edgewatch-leader")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn campaign(manager: &Arc<LeaseManager>) -> tokio::task::JoinHandle<bool> {
    let manager = manager.clone();
    tokio::spawn(async move {
        manager
            .changed()
            .await
            .expect("lease manager keeps working")
    })
}

#[tokio::test]
async fn lease_managers_compete_and_only_one_holds_the_lease() {
    let standin = StandIn::start().await;
    let alpha = Arc::new(lease_manager(&standin, "alpha").await);
    let beta = Arc::new(lease_manager(&standin, "beta").await);
    // Hold the first claim back so both managers have seen the lease free before either lands.
    standin
        .inject(Fault::delay(Duration::from_millis(200)).on("PATCH", "/leases/edgewatch-leader"));

    let (mut alpha_run, mut beta_run) = (campaign(&alpha), campaign(&beta));
    let winner = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            a = &mut alpha_run => { assert!(a.unwrap()); "alpha" }
            b = &mut beta_run => { assert!(b.unwrap()); "beta" }
        }
    })
    .await
    .expect("someone acquires the lease");
    let (leader, follower_run, follower) = if winner == "alpha" {
        (&alpha, beta_run, "beta")
    } else {
        (&beta, alpha_run, "alpha")
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !follower_run.is_finished(),
        "the follower does not lead while the lease is held"
    );
    assert_eq!(holder(&standin).as_deref(), Some(winner));
    let rejected = standin.count_requests(|r| {
        r.method == "PATCH" && r.path.ends_with("/leases/edgewatch-leader") && r.status == 409
    });
    assert_eq!(
        rejected, 1,
        "the delayed, losing claim was refused with 409 Conflict"
    );

    leader.release().await.unwrap();
    let took_over = tokio::time::timeout(PATIENCE, follower_run)
        .await
        .expect("takeover in time");
    assert!(took_over.unwrap());
    assert_eq!(holder(&standin).as_deref(), Some(follower));
}

#[tokio::test]
async fn lease_is_taken_over_after_the_holder_stops_renewing() {
    let standin = StandIn::start().await;
    let alpha = lease_manager(&standin, "alpha").await;
    assert!(
        tokio::time::timeout(PATIENCE, alpha.changed())
            .await
            .unwrap()
            .unwrap()
    );
    drop(alpha); // dies without releasing

    let beta = lease_manager(&standin, "beta").await;
    let took_over = tokio::time::timeout(PATIENCE, beta.changed())
        .await
        .expect("takeover after expiry");
    assert!(took_over.unwrap());
    assert_eq!(holder(&standin).as_deref(), Some("beta"));
    let transitions = standin
        .get_object::<Lease>(Some("default"), "edgewatch-leader")
        .and_then(|l| l.spec)
        .and_then(|s| s.lease_transitions);
    assert_eq!(transitions, Some(2));
}

#[tokio::test]
async fn lease_apply_by_a_second_manager_conflicts_unless_forced() {
    let standin = StandIn::start().await;
    let leases: Api<Lease> = Api::namespaced(standin.client(), "default");
    let claim = |who: &str| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": who}});
    leases
        .patch(
            "l",
            &PatchParams::apply("alpha"),
            &Patch::Apply(claim("alpha")),
        )
        .await
        .unwrap();
    let conflict = leases
        .patch(
            "l",
            &PatchParams::apply("beta"),
            &Patch::Apply(claim("beta")),
        )
        .await;
    match conflict {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = leases
        .patch(
            "l",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(claim("beta")),
        )
        .await
        .unwrap();
    assert_eq!(
        forced.spec.unwrap().holder_identity.as_deref(),
        Some("beta")
    );

    let stale = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("l".into()),
            resource_version: Some("1".into()),
            ..Default::default()
        },
        spec: None,
    };
    match leases.replace("l", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.reason, "Conflict"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_faults_fail_throttle_and_delay_requests() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    api.create(&PostParams::default(), &secret("s", &[]))
        .await
        .unwrap();

    standin.inject(Fault::fail(500).on("GET", "/secrets/s"));
    match api.get("s").await {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.reason.as_str()),
            (500, "InternalError")
        ),
        other => panic!("expected the injected 500, got {other:?}"),
    }
    assert!(api.get("s").await.is_ok(), "the fault was used up");

    standin.clear_requests();
    standin.inject(Fault::fail(429).on_path("/secrets/s").times(1));
    assert!(api.get("s").await.is_ok(), "kube's client retries a 429");
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);

    standin.inject(Fault::fail(401).on("PATCH", "/secrets/").times(2));
    for _ in 0..2 {
        let patch = json!({"metadata": {"labels": {"a": "b"}}});
        let result = api
            .patch("s", &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        assert!(
            matches!(result, Err(kube::Error::Api(ref s)) if s.code == 401),
            "{result:?}"
        );
    }

    standin.inject(Fault::delay(Duration::from_millis(300)).on("GET", "/secrets/s"));
    let started = std::time::Instant::now();
    api.get("s").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn request_log_counts_status_patches_and_keeps_bodies() {
    let standin = StandIn::start().await;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        standin.client(),
        "default",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("edgewatch.dev", "v1alpha1", "EdgeDeviceWatch"),
            "edgedevicewatches",
        ),
    );
    let watch = json!({
        "apiVersion": "edgewatch.dev/v1alpha1", "kind": "EdgeDeviceWatch",
        "metadata": {"name": "line-1", "namespace": "default"}, "spec": {"devices": ["dev-1"]},
    });
    standin.apply_json(watch);
    let status = json!({
        "apiVersion": "edgewatch.dev/v1alpha1", "kind": "EdgeDeviceWatch",
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "AllHealthy", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    });
    let params = PatchParams::apply("edgewatch").force();
    api.patch_status("line-1", &params, &Patch::Apply(&status))
        .await
        .unwrap();
    api.patch_status("line-1", &params, &Patch::Apply(&status))
        .await
        .unwrap();

    assert_eq!(
        standin.status_patches("edgedevicewatches", "default", "line-1"),
        2
    );
    assert_eq!(
        standin.status_patches("edgedevicewatches", "default", "other"),
        0
    );
    let first = &standin.requests()[0];
    assert_eq!(
        first.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        first.query_param("fieldManager").as_deref(),
        Some("edgewatch")
    );
    assert_eq!(first.query_param("force").as_deref(), Some("true"));
    assert!(first.body.contains("AllHealthy"));

    let stored = standin
        .get_json(
            "edgewatch.dev/v1alpha1",
            "EdgeDeviceWatch",
            Some("default"),
            "line-1",
        )
        .unwrap();
    assert_eq!(stored["status"]["conditions"][0]["reason"], "AllHealthy");
    assert_eq!(stored["metadata"]["generation"], 1);
}

#[tokio::test]
async fn kubeconfig_and_discovery_work_like_a_cluster() {
    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let dir = tempfile::tempdir().unwrap();
    let path = standin.write_kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let (resource, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "edgewatch.dev",
            "v1alpha1",
            "EdgeDeviceWatch",
        ))
        .expect("EdgeDeviceWatch is discoverable");
    assert_eq!(resource.plural, "edgedevicewatches");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "edgedevicewatches/status" || sub.plural == "status")
    );
    assert!(discovery.has_group("example.test"));
    assert!(discovery.has_group("coordination.k8s.io"));

    let secrets: Api<Secret> = Api::default_namespaced(client);
    secrets
        .create(&PostParams::default(), &secret("via-kubeconfig", &[]))
        .await
        .unwrap();
    assert!(
        standin
            .get_object::<Secret>(Some("default"), "via-kubeconfig")
            .is_some()
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    api.create(&PostParams::default(), &secret("one", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &secret("two", &[]))
        .await
        .unwrap();

    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(s) => initial.push(s.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?} during the initial events"),
        }
    }
    assert_eq!(initial, ["one", "two"]);
    assert_eq!(
        standin.count_requests(|r| r.method == "GET" && !r.is_watch()),
        0,
        "no list call"
    );
    api.delete("one", &DeleteParams::default()).await.unwrap();
    match next(&mut stream).await.unwrap() {
        watcher::Event::Delete(s) => assert_eq!(s.name_any(), "one"),
        other => panic!("expected Delete, got {other:?}"),
    }
}

#[tokio::test]
async fn wait_for_wakes_on_changes_and_stop_ends_watches() {
    let mut standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    let writer = api.clone();
    tokio::spawn(async move {
        writer
            .create(&PostParams::default(), &secret("late", &[]))
            .await
            .unwrap();
    });
    let appeared = standin
        .wait_for(PATIENCE, |s| {
            s.get_object::<Secret>(Some("default"), "late").is_some()
        })
        .await;
    assert!(appeared);
    let never = standin
        .wait_for(Duration::from_millis(100), |s| {
            s.get_object::<Secret>(Some("default"), "nope").is_some()
        })
        .await;
    assert!(!never);

    let rv = standin.resource_version().to_string();
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    standin.stop().await;
    let end = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("watch ended in time");
    assert!(
        end.is_none_or(|e| e.is_err()),
        "the open watch ends when the stand-in stops"
    );
    assert!(
        api.get("late").await.is_err(),
        "a stopped stand-in refuses requests"
    );
}

#[tokio::test]
async fn metadata_requests_get_partial_object_metadata_without_data() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    let mut with_data = secret("creds", &[("app", "edgewatch")]);
    with_data.string_data = Some([("key".to_string(), "not-a-real-key".to_string())].into());
    api.create(&PostParams::default(), &with_data)
        .await
        .unwrap();

    let meta = api.get_metadata("creds").await.unwrap();
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(
        meta.labels().get("app").map(String::as_str),
        Some("edgewatch")
    );

    let metadata_api: Api<kube::core::PartialObjectMeta<Secret>> =
        Api::namespaced(standin.client(), "default");
    let mut stream = watcher(metadata_api, watcher::Config::default()).boxed();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::InitApply(m) => assert_eq!(m.name_any(), "creds"),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    let raw = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/namespaces/default/secrets",
            standin.url()
        ))
        .header(
            "accept",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("PartialObjectMetadataList"));
    assert!(
        !raw.contains("stringData") && !raw.contains("not-a-real-key"),
        "{raw}"
    );
}

mod controller_loop {
    //! The operator's shape in miniature: a Controller over a custom resource that also watches
    //! Secrets, applies status with a field manager, and settles instead of looping.

    use super::*;
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::reflector::ObjectRef;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error("reconcile failed: {0}")]
    struct Failed(#[from] kube::Error);

    struct Context {
        client: kube::Client,
        reconciles: AtomicUsize,
    }

    async fn reconcile(gadget: Arc<Gadget>, ctx: Arc<Context>) -> Result<Action, Failed> {
        ctx.reconciles.fetch_add(1, Ordering::SeqCst);
        let namespace = gadget.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let phase = match secrets.get_opt(&gadget.name_any()).await? {
            Some(_) => "HasSecret",
            None => "NoSecret",
        };
        let status =
            json!({"apiVersion": "example.test/v1", "kind": "Gadget", "status": {"phase": phase}});
        Api::<Gadget>::namespaced(ctx.client.clone(), &namespace)
            .patch_status(
                &gadget.name_any(),
                &PatchParams::apply("edgewatch").force(),
                &Patch::Apply(&status),
            )
            .await?;
        Ok(Action::await_change())
    }

    fn error_policy(_: Arc<Gadget>, _: &Failed, _: Arc<Context>) -> Action {
        Action::requeue(Duration::from_millis(50))
    }

    fn phase(standin: &StandIn) -> Option<String> {
        standin
            .get_object::<Gadget>(Some("default"), "g")
            .and_then(|g| g.status)
            .and_then(|s| s.phase)
    }

    #[tokio::test]
    async fn controller_reconciles_on_secret_changes_and_settles() {
        let standin = StandIn::start().await;
        standin.install_crd(&Gadget::crd());
        let client = standin.client();
        let ctx = Arc::new(Context {
            client: client.clone(),
            reconciles: AtomicUsize::new(0),
        });
        let controller = Controller::new(
            Api::<Gadget>::all(client.clone()),
            watcher::Config::default(),
        )
        .watches(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default(),
            |secret| {
                Some(
                    ObjectRef::new(&secret.name_any())
                        .within(&secret.namespace().unwrap_or_default()),
                )
            },
        )
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
        let running = tokio::spawn(controller);

        standin.apply_object(&gadget("default", "g", 1));
        assert!(
            standin
                .wait_for(PATIENCE, |s| phase(s).as_deref() == Some("NoSecret"))
                .await
        );

        // A status PATCH fails once; the error policy requeues and the write lands.
        standin.inject(Fault::fail(500).on("PATCH", "/gadgets/g/status"));
        standin.apply_object(&secret("g", &[]));
        assert!(
            standin
                .wait_for(PATIENCE, |s| phase(s).as_deref() == Some("HasSecret"))
                .await
        );

        // Settled: further reconciles (triggered by our own status write) change nothing.
        let rv = standin.resource_version();
        let quiet = standin
            .wait_for(Duration::from_millis(300), |s| s.resource_version() != rv)
            .await;
        assert!(
            !quiet,
            "no write loop: re-applying the same status is a no-op"
        );
        let failed = standin
            .count_requests(|r| r.is_status_patch("gadgets", "default", "g") && r.status == 500);
        assert_eq!(failed, 1);
        assert!(ctx.reconciles.load(Ordering::SeqCst) >= 3);
        running.abort();
    }
}

#[tokio::test]
async fn direct_store_access_is_seen_by_watches_and_faults_can_ask_to_retry_later() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    let mut events = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();

    let stored = standin.apply_object(&secret("direct", &[("seeded", "yes")]));
    assert!(stored.metadata.uid.is_some());
    assert!(
        matches!(next(&mut events).await.unwrap(), WatchEvent::Added(s) if s.name_any() == "direct")
    );
    assert!(standin.delete_object::<Secret>(Some("default"), "direct"));
    assert!(
        !standin.delete_object::<Secret>(Some("default"), "direct"),
        "already gone"
    );
    assert!(
        matches!(next(&mut events).await.unwrap(), WatchEvent::Deleted(s) if s.name_any() == "direct")
    );

    standin.inject(Fault::fail(503).retry_after(7).on("GET", "/secrets/direct"));
    let response = reqwest::get(format!(
        "{}/api/v1/namespaces/default/secrets/direct",
        standin.url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7");
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["reason"], "ServiceUnavailable");
}

#[tokio::test]
async fn selector_watch_sees_objects_enter_and_leave_the_selection() {
    let standin = StandIn::start().await;
    let api: Api<Secret> = Api::namespaced(standin.client(), "default");
    api.create(&PostParams::default(), &secret("s", &[("app", "other")]))
        .await
        .unwrap();
    let rv = standin.resource_version().to_string();
    let mut events = api
        .watch(&WatchParams::default().labels("app=edgewatch"), &rv)
        .await
        .unwrap()
        .boxed();

    let relabel = |app: &'static str| json!({"metadata": {"labels": {"app": app}}});
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(relabel("edgewatch")),
    )
    .await
    .unwrap();
    let annotate = json!({"metadata": {"annotations": {"note": "still selected"}}});
    api.patch("s", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    let left = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(relabel("other")),
        )
        .await
        .unwrap();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": null}})),
    )
    .await
    .unwrap();
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(relabel("edgewatch")),
    )
    .await
    .unwrap();

    assert!(
        matches!(next(&mut events).await.unwrap(), WatchEvent::Added(_)),
        "entering the selection is ADDED"
    );
    assert!(matches!(
        next(&mut events).await.unwrap(),
        WatchEvent::Modified(_)
    ));
    match next(&mut events).await.unwrap() {
        WatchEvent::Deleted(s) => {
            assert_eq!(
                s.labels().get("app").map(String::as_str),
                Some("edgewatch"),
                "the last selected state"
            );
            assert_eq!(s.resource_version(), left.resource_version());
        }
        other => panic!("leaving the selection is DELETED, got {other:?}"),
    }
    assert!(
        matches!(next(&mut events).await.unwrap(), WatchEvent::Added(_)),
        "changes outside the selection are not sent"
    );
}

#[tokio::test]
async fn kube_finalizer_helper_adds_then_removes_its_finalizer() {
    use kube::runtime::finalizer::{Event as Finalizer, finalizer};

    let standin = StandIn::start().await;
    standin.install_crd(&Gadget::crd());
    let api: Api<Gadget> = Api::namespaced(standin.client(), "default");
    api.create(&PostParams::default(), &gadget("default", "g", 1))
        .await
        .unwrap();
    let name = "example.test/cleanup";
    let run = |api: Api<Gadget>| async move {
        let object = Arc::new(api.get("g").await.unwrap());
        finalizer(&api, name, object, |event| async move {
            Ok::<_, std::convert::Infallible>(match event {
                Finalizer::Apply(_) => kube::runtime::controller::Action::await_change(),
                Finalizer::Cleanup(_) => kube::runtime::controller::Action::await_change(),
            })
        })
        .await
        .unwrap()
    };

    run(api.clone()).await;
    assert_eq!(api.get("g").await.unwrap().finalizers(), [name]);
    api.delete("g", &DeleteParams::default()).await.unwrap();
    assert!(
        api.get("g")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    run(api.clone()).await;
    assert!(
        api.get_opt("g").await.unwrap().is_none(),
        "removing the finalizer completes the deletion"
    );
    let json_patches = standin.count_requests(|r| {
        r.method == "PATCH"
            && r.content_type.as_deref() == Some("application/json-patch+json")
            && r.status == 200
    });
    assert_eq!(json_patches, 2);
}
