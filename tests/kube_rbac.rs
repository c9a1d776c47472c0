//! The chart's RBAC on the real kube-apiserver 1.35: `helm template` renders the
//! ServiceAccount, ClusterRole/Role and bindings, they are applied as rendered, and the
//! ServiceAccount's own token (TokenRequest) can do exactly what the operator needs —
//! read watches and the Secrets they name, apply their status, write events.k8s.io
//! Events, hold its one Lease — and nothing more.

#[path = "support/kube_cluster/mod.rs"]
mod kube_cluster;

use std::collections::BTreeSet;
use std::fmt::Debug;

use edgewatch::api::{EdgeDeviceWatch, EdgeDeviceWatchSpec};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event as CoreEvent, Namespace, ObjectReference, Secret, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, Client, Resource};
use kube_cluster::chart_rbac::ChartRbac;
use kube_cluster::{KubeCluster, shared};
use serde_json::json;

/// (apiGroup, resource, verb, resourceName or empty for any).
type Grant = (String, String, String, String);

fn grant(group: &str, resource: &str, verb: &str, name: &str) -> Grant {
    (group.into(), resource.into(), verb.into(), name.into())
}

/// What the operator does in every namespace it watches: list/watch watches (and get
/// them), apply their status (get/update are granted beside patch), read the Secrets
/// they name (Secrets are watched for rotation), and record Events.
fn watch_grants() -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for verb in ["get", "list", "watch"] {
        grants.insert(grant("edgewatch.dev", "edgedevicewatches", verb, ""));
        grants.insert(grant("", "secrets", verb, ""));
    }
    for verb in ["get", "patch", "update"] {
        grants.insert(grant("edgewatch.dev", "edgedevicewatches/status", verb, ""));
    }
    for verb in ["create", "patch"] {
        grants.insert(grant("events.k8s.io", "events", verb, ""));
    }
    grants
}

/// What leader election needs in the release namespace: create any Lease (the name is
/// not known when create is authorised), everything else on its own Lease only.
fn lease_grants(lease: &str) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::from([grant("coordination.k8s.io", "leases", "create", "")]);
    for verb in ["get", "update", "patch"] {
        grants.insert(grant("coordination.k8s.io", "leases", verb, lease));
    }
    grants
}

/// What `client` may do in `namespace`, as the server computes it (the answer behind
/// `kubectl auth can-i --list`).
async fn effective_grants(client: Client, namespace: &str) -> BTreeSet<Grant> {
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let answer = Api::<SelfSubjectRulesReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .expect("SelfSubjectRulesReview");
    let status = answer.status.expect("a review status");
    assert!(!status.incomplete, "{:?}", status.evaluation_error);
    let mut grants = BTreeSet::new();
    for rule in status.resource_rules {
        let names = rule.resource_names.unwrap_or_default();
        let names = if names.is_empty() {
            vec![String::new()]
        } else {
            names
        };
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                for verb in &rule.verbs {
                    for name in &names {
                        grants.insert(grant(&group, &resource, verb, name));
                    }
                }
            }
        }
    }
    grants
}

/// One release of the chart's RBAC in its own namespace, and clients for its
/// ServiceAccount and for a ServiceAccount without any binding (what every account may
/// do anyway: discovery, self reviews).
struct Release {
    rbac: ChartRbac,
    operator: Client,
    bare: Client,
}

impl Release {
    fn namespace(&self) -> &str {
        &self.rbac.namespace
    }

    /// What the chart's account may do in `namespace` beyond an account without bindings.
    async fn granted_in(&self, namespace: &str) -> BTreeSet<Grant> {
        let everyone = effective_grants(self.bare.clone(), namespace).await;
        let operator = effective_grants(self.operator.clone(), namespace).await;
        operator.difference(&everyone).cloned().collect()
    }
}

async fn install(cluster: &KubeCluster, rbac: impl FnOnce(&str, &str) -> ChartRbac) -> Release {
    cluster.install_crd();
    let namespace = cluster.create_namespace("rbac").await;
    let rbac = rbac(&format!("edgewatch-{namespace}"), &namespace);
    cluster.kubectl().apply(&rbac.manifest());
    Api::<ServiceAccount>::namespaced(cluster.client().await, &namespace)
        .create(&PostParams::default(), &named("bare"))
        .await
        .unwrap();
    Release {
        operator: cluster
            .service_account_client(&namespace, &rbac.service_account())
            .await,
        bare: cluster.service_account_client(&namespace, "bare").await,
        rbac,
    }
}

async fn install_chart(cluster: &KubeCluster, sets: &[&str]) -> Release {
    install(cluster, |release, namespace| {
        ChartRbac::render(release, namespace, sets)
    })
    .await
}

fn named<K: Resource + Default>(name: &str) -> K {
    let mut object = K::default();
    object.meta_mut().name = Some(name.to_owned());
    object
}

#[tokio::test]
async fn the_charts_rbac_grants_exactly_what_the_operator_needs() {
    let cluster = shared();
    let release = install_chart(cluster, &[]).await;
    let lease = release.rbac.release.clone(); // the chart's full name
    let in_release_namespace = release.granted_in(release.namespace()).await;
    let expected: BTreeSet<Grant> = watch_grants()
        .union(&lease_grants(&lease))
        .cloned()
        .collect();
    assert_eq!(in_release_namespace, expected);

    let elsewhere = cluster.create_namespace("rbac-elsewhere").await;
    assert_eq!(release.granted_in(&elsewhere).await, watch_grants());
}

fn assert_forbidden<T: Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn spec() -> EdgeDeviceWatchSpec {
    serde_json::from_value(json!({
        "hub": {"connectionStringSecretRef": {"name": "hub", "key": "connectionString"}},
        "devices": ["gw-1"],
    }))
    .unwrap()
}

/// A watch and the Secret it names, created by the admin in `namespace`.
async fn watch_and_secret(cluster: &KubeCluster, namespace: &str) {
    let admin = cluster.client().await;
    Api::<EdgeDeviceWatch>::namespaced(admin.clone(), namespace)
        .create(
            &PostParams::default(),
            &EdgeDeviceWatch::new("plant-a", spec()),
        )
        .await
        .unwrap();
    let mut secret: Secret = named("hub");
    secret.string_data = Some([("connectionString".into(), "not-a-real-secret".into())].into());
    Api::<Secret>::namespaced(admin, namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

fn event(namespace: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some("plant-a.transition".into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        regarding: Some(ObjectReference {
            api_version: Some("edgewatch.dev/v1alpha1".into()),
            kind: Some("EdgeDeviceWatch".into()),
            name: Some("plant-a".into()),
            namespace: Some(namespace.into()),
            ..ObjectReference::default()
        }),
        event_time: Some(MicroTime(Timestamp::now())),
        reporting_controller: Some("edgewatch.dev/operator".into()),
        reporting_instance: Some("edgewatch-0".into()),
        action: Some("Reconcile".into()),
        reason: Some("DeviceNotOnline".into()),
        type_: Some("Warning".into()),
        note: Some("line2-gw is not online".into()),
        ..Event::default()
    }
}

/// A watch from resourceVersion 0 replays the existing object as ADDED.
async fn assert_watch_starts_with_added<K>(api: &Api<K>)
where
    K: Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let stream = api
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .expect("watch allowed");
    let first = Box::pin(stream).next().await;
    assert!(
        matches!(first, Some(Ok(WatchEvent::Added(_)))),
        "first watch event: {first:?}"
    );
}

#[tokio::test]
async fn the_charts_service_account_can_do_what_the_operator_does() {
    let cluster = shared();
    let release = install_chart(cluster, &[]).await;
    let elsewhere = cluster.create_namespace("rbac-watched").await;
    watch_and_secret(cluster, &elsewhere).await;
    let client = release.operator.clone();

    let watches: Api<EdgeDeviceWatch> = Api::namespaced(client.clone(), &elsewhere);
    watches.list(&ListParams::default()).await.unwrap();
    assert_watch_starts_with_added(&watches).await;
    watches.get("plant-a").await.unwrap();
    Api::<EdgeDeviceWatch>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("the cluster-wide default lists watches in every namespace");
    let status = json!({
        "apiVersion": "edgewatch.dev/v1alpha1", "kind": "EdgeDeviceWatch",
        "status": {"hub": "plant-a.azure-devices.net"},
    });
    watches
        .patch_status(
            "plant-a",
            &PatchParams::apply("edgewatch").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("status apply");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &elsewhere);
    secrets.get("hub").await.unwrap();
    secrets.list(&ListParams::default()).await.unwrap();
    assert_watch_starts_with_added(&secrets).await;

    let events: Api<Event> = Api::namespaced(client.clone(), &elsewhere);
    events
        .create(&PostParams::default(), &event(&elsewhere))
        .await
        .unwrap();
    let repeat = json!({"series": {"count": 2, "lastObservedTime": MicroTime(Timestamp::now())}});
    events
        .patch(
            "plant-a.transition",
            &PatchParams::default(),
            &Patch::Merge(&repeat),
        )
        .await
        .expect("a repeated event is a patch");

    let lease_name = release.rbac.release.clone();
    let leases: Api<Lease> = Api::namespaced(client, release.namespace());
    let mut lease: Lease = named(&lease_name);
    lease.spec = Some(LeaseSpec {
        holder_identity: Some("edgewatch-0".into()),
        lease_duration_seconds: Some(15),
        ..LeaseSpec::default()
    });
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut held = leases.get(&lease_name).await.unwrap();
    held.spec.as_mut().unwrap().holder_identity = Some("edgewatch-1".into());
    leases
        .replace(&lease_name, &PostParams::default(), &held)
        .await
        .unwrap();
    let renew = json!({"spec": {"leaseDurationSeconds": 20}});
    leases
        .patch(&lease_name, &PatchParams::default(), &Patch::Merge(&renew))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_charts_service_account_cannot_do_more() {
    let cluster = shared();
    let release = install_chart(cluster, &[]).await;
    let elsewhere = cluster.create_namespace("rbac-guarded").await;
    watch_and_secret(cluster, &elsewhere).await;
    let client = release.operator.clone();

    let watches: Api<EdgeDeviceWatch> = Api::namespaced(client.clone(), &elsewhere);
    let spec_change = json!({"spec": {"suspend": true}});
    assert_forbidden(
        watches
            .patch(
                "plant-a",
                &PatchParams::default(),
                &Patch::Merge(&spec_change),
            )
            .await,
        "patching a watch's spec",
    );
    assert_forbidden(
        watches
            .create(&PostParams::default(), &EdgeDeviceWatch::new("new", spec()))
            .await,
        "creating a watch",
    );
    assert_forbidden(
        watches.delete("plant-a", &DeleteParams::default()).await,
        "deleting a watch",
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &elsewhere);
    assert_forbidden(
        secrets
            .create(&PostParams::default(), &named("stolen"))
            .await,
        "creating a Secret",
    );
    let overwrite = json!({"stringData": {"connectionString": "x"}});
    assert_forbidden(
        secrets
            .patch("hub", &PatchParams::default(), &Patch::Merge(&overwrite))
            .await,
        "patching a Secret",
    );
    assert_forbidden(
        secrets.delete("hub", &DeleteParams::default()).await,
        "deleting a Secret",
    );

    assert_forbidden(
        Api::<CoreEvent>::namespaced(client.clone(), &elsewhere)
            .create(&PostParams::default(), &named("core-event"))
            .await,
        "creating a core/v1 Event (the operator records events.k8s.io/v1 only)",
    );
    assert_forbidden(
        Api::<Event>::namespaced(client.clone(), &elsewhere)
            .delete("anything", &DeleteParams::default())
            .await,
        "deleting an Event",
    );

    let own_lease = release.rbac.release.clone();
    let leases: Api<Lease> = Api::namespaced(client.clone(), release.namespace());
    assert_forbidden(leases.get("someone-else").await, "reading another Lease");
    assert_forbidden(
        leases.delete(&own_lease, &DeleteParams::default()).await,
        "deleting its Lease",
    );
    assert_forbidden(
        Api::<Lease>::namespaced(client.clone(), &elsewhere)
            .create(&PostParams::default(), &named(&own_lease))
            .await,
        "creating a Lease outside the release namespace",
    );

    assert_forbidden(
        Api::<ConfigMap>::namespaced(client.clone(), &elsewhere)
            .list(&ListParams::default())
            .await,
        "listing ConfigMaps",
    );
    assert_forbidden(
        Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await,
        "listing Namespaces",
    );
}

#[tokio::test]
async fn a_release_for_one_namespace_reads_only_that_namespace() {
    let cluster = shared();
    cluster.install_crd();
    let watched = cluster.create_namespace("rbac-only").await;
    let other = cluster.create_namespace("rbac-other").await;
    watch_and_secret(cluster, &watched).await;
    let set = format!("operator.watchNamespaces={{{watched}}}");
    let release = install_chart(cluster, &[&set]).await;

    assert_eq!(release.granted_in(&watched).await, watch_grants());
    assert!(release.granted_in(&other).await.is_empty());
    let client = release.operator.clone();
    Api::<EdgeDeviceWatch>::namespaced(client.clone(), &watched)
        .get("plant-a")
        .await
        .unwrap();
    assert_forbidden(
        Api::<EdgeDeviceWatch>::namespaced(client.clone(), &other)
            .list(&ListParams::default())
            .await,
        "listing watches in a namespace the release does not watch",
    );
    assert_forbidden(
        Api::<EdgeDeviceWatch>::all(client)
            .list(&ListParams::default())
            .await,
        "listing watches across namespaces",
    );
}

/// The helper the per-rule tests of the operator build on: applying the chart's RBAC
/// without one rule takes away that rule's grants and nothing else.
#[tokio::test]
async fn removing_one_rule_takes_away_exactly_its_grants() {
    let cluster = shared();
    let rules = ChartRbac::render("edgewatch-probe", "probe", &[]).rules();
    assert_eq!(rules.len(), 6, "{rules:#?}");
    for index in 0..rules.len() {
        let mut removed = None;
        let release = install(cluster, |release, namespace| {
            let full = ChartRbac::render(release, namespace, &[]);
            let rule = full.rules().remove(index);
            let without = full.without(&rule);
            removed = Some(rule);
            without
        })
        .await;
        let removed = removed.unwrap();
        let lease = release.rbac.release.clone();
        let all: BTreeSet<Grant> = watch_grants()
            .union(&lease_grants(&lease))
            .cloned()
            .collect();
        let left = release.granted_in(release.namespace()).await;
        let gone: BTreeSet<Grant> = all.difference(&left).cloned().collect();
        assert!(left.is_subset(&all), "{}: {left:?}", removed.role);
        let verbs = removed.rule["verbs"].as_array().unwrap();
        let resources = removed.rule["resources"].as_array().unwrap();
        assert_eq!(
            gone.len(),
            verbs.len() * resources.len(),
            "removing {} {} took away {gone:?}",
            removed.role,
            removed.rule
        );
        assert!(
            gone.iter().all(|(_, resource, verb, _)| {
                resources.iter().any(|r| r == resource.as_str())
                    && verbs.iter().any(|v| v == verb.as_str())
            }),
            "removing {} {} took away {gone:?}",
            removed.role,
            removed.rule
        );
    }
}
