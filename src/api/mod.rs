//! The `EdgeDeviceWatch` custom resource (`edgewatch.dev/v1alpha1`): what users declare
//! (spec), what the operator publishes (status), and the CRD generated from both.

pub mod duration;
// kube-derive's `KubeSchema` copies each struct, `pub` included, into a function body to
// generate its schema; `unreachable_pub` then fires on the copy. Every type here is API.
#[allow(unreachable_pub)]
pub mod status;
#[allow(unreachable_pub)]
pub mod watch;

pub use duration::{DURATION_PATTERN, DurationParseError, parse_duration};
pub use status::{
    AspectState, DeviceCounts, DeviceEntry, DriftEntry, EdgeDeviceWatchStatus, FailingModule,
    PingFailure, PingFailureKind, RestartObservation, WatchMemory,
};
pub use watch::{
    EdgeDeviceWatch, EdgeDeviceWatchSpec, HubSpec, ModuleExpectation, PingSpec, RestartLoopSpec,
    SecretKeyRef, SelectorSpec, WorkloadIdentitySpec,
};

/// The CRD exactly as `edgewatch crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&EdgeDeviceWatch::crd())
}
