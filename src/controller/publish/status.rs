//! Writing the status: server-side apply on the status subresource, as field manager
//! `edgewatch`, and only when something other than timestamps changed.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};

use crate::controller::status::build::differs_meaningfully;

/// The field manager that owns `.status` on every `EdgeDeviceWatch`.
pub(crate) const FIELD_MANAGER: &str = "edgewatch";

/// Applies `status` to the watch `name`, taking ownership of every field it sets (and
/// dropping fields it set before but no longer sends, such as a cleared `Stalled`).
pub(crate) async fn apply_status(
    api: &Api<EdgeDeviceWatch>,
    name: &str,
    status: &EdgeDeviceWatchStatus,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": EdgeDeviceWatch::api_version(&()),
        "kind": EdgeDeviceWatch::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await
        .map(|_| ())
}

/// Applies `new` unless it equals `previous` but for timestamps; returns whether it wrote.
pub(crate) async fn write_if_changed(
    api: &Api<EdgeDeviceWatch>,
    name: &str,
    previous: Option<&EdgeDeviceWatchStatus>,
    new: &EdgeDeviceWatchStatus,
) -> Result<bool, kube::Error> {
    if !differs_meaningfully(previous, new) {
        return Ok(false);
    }
    apply_status(api, name, new).await?;
    Ok(true)
}
