//! IoT Hub service client. Knows nothing of Kubernetes.
//!
//! [`IotHubClient`] reads twins, runs queries and invokes direct methods through the
//! service REST API, authenticating with a SAS policy or Microsoft Entra ID, pacing
//! itself below the hub's quotas and retrying only what is worth retrying.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edgewatch::iothub::{ClientConfig, ConnectionString, Credential, ErrorKind, IotHubClient};
//! use futures::TryStreamExt;
//! use std::time::Duration;
//!
//! let cs = ConnectionString::parse("HostName=plant-a.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=c2VjcmV0")?;
//! let client = IotHubClient::new(ClientConfig::new(cs.host_name()), Credential::SharedAccessKey(cs))?;
//! let agent: serde_json::Value = client.get_module_twin("line1-gw", "$edgeAgent").await?;
//! let edge_devices: Vec<serde_json::Value> = client
//!     .query("SELECT * FROM devices WHERE capabilities.iotEdge = true")
//!     .try_collect()
//!     .await?;
//! match client.ping_edge_agent("line1-gw", Duration::from_secs(10)).await {
//!     Ok(latency) => println!("reachable in {latency:?}"),
//!     Err(e) if e.kind() == ErrorKind::DeviceNotOnline => println!("edge runtime offline"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```

mod auth;
pub mod billing;
mod client;
mod config;
mod connection_string;
mod error;
mod method;
mod observer;
mod pacing;
mod query;
mod retry;
pub mod sas;
mod secret;
mod urls;

pub use auth::{Credential, IOTHUB_SCOPE, WorkloadIdentityConfig};
pub use client::IotHubClient;
pub use config::{ClientConfig, Clock, RateLimit, RateLimits, RetryPolicy, SystemClock};
pub use connection_string::ConnectionString;
pub use error::{ConfigError, ErrorKind, IotHubError};
pub use method::{MethodRequest, MethodResponse};
pub use observer::{NoopObserver, Operation, RequestObserver};
pub use query::{MAX_QUERY_CHARS, QueryPage};
pub use secret::Secret;
pub use urls::encode_segment;
