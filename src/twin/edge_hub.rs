//! The `$edgeHub` module twin: its own deployment status and its downstream clients.

use serde_json::Value;

use super::envelope::{Expect, SectionMeta, open};
use super::extract::{integer, string, sub_object, time};
use super::{DeploymentStatus, EDGE_HUB, TwinError, TwinIdentity, TwinTime, parse_json};

/// One downstream client (module, leaf device or child edge device) of `$edgeHub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubClient {
    /// Client id with the twin-key encoding (`%2E`, `%24`, `%20`) undone, e.g. `dev/$edgeHub`.
    pub id: String,
    /// `Connected` or `Disconnected` as reported.
    pub status: Option<String>,
    pub last_connected: Option<TwinTime>,
    pub last_disconnected: Option<TwinTime>,
}

impl HubClient {
    pub fn is_disconnected(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Disconnected"))
    }
}

/// The `$edgeHub` twin, reduced to what the health rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeHubTwin {
    pub identity: TwinIdentity,
    pub desired: SectionMeta,
    pub reported: SectionMeta,
    pub last_desired_version: Option<i64>,
    pub last_desired_status: Option<DeploymentStatus>,
    /// Sorted by id.
    pub clients: Vec<HubClient>,
}

impl EdgeHubTwin {
    pub fn from_slice(bytes: &[u8]) -> Result<EdgeHubTwin, TwinError> {
        EdgeHubTwin::from_value(&parse_json(bytes)?)
    }

    pub fn from_value(value: &Value) -> Result<EdgeHubTwin, TwinError> {
        let twin = open(value, Expect::Module(EDGE_HUB))?;
        let status = sub_object(twin.reported, "lastDesiredStatus");
        let clients = sub_object(twin.reported, "clients")
            .map(|clients| {
                clients
                    .iter()
                    .filter_map(|(key, entry)| {
                        let entry = entry.as_object()?;
                        Some(HubClient {
                            id: decode_client_key(key),
                            status: string(Some(entry), "status"),
                            last_connected: time(Some(entry), "lastConnectedTimeUtc"),
                            last_disconnected: time(Some(entry), "lastDisconnectedTimeUtc"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(EdgeHubTwin {
            identity: twin.identity,
            desired: SectionMeta::read(twin.desired),
            reported: SectionMeta::read(twin.reported),
            last_desired_version: integer(twin.reported, "lastDesiredVersion"),
            last_desired_status: status.map(|s| DeploymentStatus {
                code: integer(Some(s), "code"),
                description: string(Some(s), "description"),
            }),
            clients,
        })
    }
}

/// Undoes edgeHub's twin-key encoding of client ids (twin keys cannot hold `.`, `$`, space).
fn decode_client_key(key: &str) -> String {
    key.replace("%2E", ".")
        .replace("%2e", ".")
        .replace("%24", "$")
        .replace("%20", " ")
}

impl std::str::FromStr for EdgeHubTwin {
    type Err = TwinError;

    fn from_str(text: &str) -> Result<EdgeHubTwin, TwinError> {
        EdgeHubTwin::from_slice(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::decode_client_key;

    #[test]
    fn client_keys_are_decoded() {
        assert_eq!(
            decode_client_key("child%2E1/%24edgeHub"),
            "child.1/$edgeHub"
        );
        assert_eq!(decode_client_key("leaf%20one"), "leaf one");
        assert_eq!(decode_client_key("plain/mod"), "plain/mod");
    }
}
