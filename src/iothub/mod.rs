//! IoT Hub service client. Knows nothing of Kubernetes.
//!
//! [`IotHubClient`] reads twins, runs queries and invokes direct methods through the
//! service REST API, authenticating with a SAS policy or Microsoft Entra ID, pacing
//! itself below the hub's quotas and retrying only what is worth retrying.

mod auth;
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
