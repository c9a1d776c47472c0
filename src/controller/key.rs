//! Which watch per-watch state belongs to.

use std::fmt;

use kube::ResourceExt;

use crate::api::EdgeDeviceWatch;

/// A watch's namespace and name: the key of its state, backoff, hub client and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub namespace: String,
    pub name: String,
}

impl WatchKey {
    /// The key of a watch, in `default_namespace` when the object names none (a watch
    /// file read by `edgewatch check`, as `kubectl apply` would place it).
    pub fn of(watch: &EdgeDeviceWatch, default_namespace: &str) -> Self {
        Self {
            namespace: watch
                .namespace()
                .unwrap_or_else(|| default_namespace.to_owned()),
            name: watch.name_any(),
        }
    }
}

/// `namespace/name`, as kubectl writes it (for logs).
impl fmt::Display for WatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_like_kubectl_and_defaults_its_namespace() {
        let spec = serde_saphyr::from_str("hub: {}\ndevices: [gw]\n").unwrap();
        let mut watch = EdgeDeviceWatch::new("plant-a", spec);
        assert_eq!(
            WatchKey::of(&watch, "default").to_string(),
            "default/plant-a"
        );
        watch.metadata.namespace = Some("iot".into());
        let key = WatchKey::of(&watch, "default");
        assert_eq!(
            (key.namespace.as_str(), key.name.as_str()),
            ("iot", "plant-a")
        );
        assert_eq!(key.to_string(), "iot/plant-a");
    }
}
