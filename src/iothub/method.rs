//! Direct methods on modules, and the `$edgeAgent` ping built on them.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{Call, IotHubClient, check_id, parse_json};
use super::error::{ErrorKind, IotHubError};
use super::observer::Operation;
use super::urls;

/// Time the client adds to the hub's own timeouts, as the C# SDK does (reference §1.5).
const METHOD_TIMEOUT_SLACK: Duration = Duration::from_secs(15);
const MIN_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HUB_TIMEOUT: Duration = Duration::from_secs(300);

/// A direct method call. `connect_timeout` defaults to zero so an offline device fails
/// at once with 404103 instead of holding the call open.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRequest {
    pub method_name: String,
    pub payload: serde_json::Value,
    /// How long the hub waits for the device's answer (5–300 s).
    pub response_timeout: Duration,
    /// How long the hub waits for a disconnected device to connect (0–300 s).
    pub connect_timeout: Duration,
}

impl MethodRequest {
    /// A call with the service defaults: 30 s response timeout, no waiting for a connection.
    pub fn new(method_name: impl Into<String>, payload: serde_json::Value) -> Self {
        MethodRequest {
            method_name: method_name.into(),
            payload,
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::ZERO,
        }
    }

    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The client-side HTTP timeout: 15 s + connect timeout + response timeout.
    pub fn client_timeout(&self) -> Duration {
        METHOD_TIMEOUT_SLACK + self.connect_timeout + self.response_timeout
    }

    fn validate(&self) -> Result<(), IotHubError> {
        let problem = if self.method_name.trim().is_empty() {
            "the method name is empty".to_owned()
        } else if !(MIN_RESPONSE_TIMEOUT..=MAX_HUB_TIMEOUT).contains(&self.response_timeout) {
            format!(
                "the response timeout must be between 5 and 300 seconds, not {:?}",
                self.response_timeout
            )
        } else if self.connect_timeout > MAX_HUB_TIMEOUT {
            format!(
                "the connect timeout must be at most 300 seconds, not {:?}",
                self.connect_timeout
            )
        } else {
            return Ok(());
        };
        Err(IotHubError::new(
            ErrorKind::InvalidRequest,
            Operation::InvokeMethod,
            problem,
        ))
    }

    fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "methodName": self.method_name,
            "payload": self.payload,
            "responseTimeoutInSeconds": self.response_timeout.as_secs(),
            "connectTimeoutInSeconds": self.connect_timeout.as_secs(),
        })
    }
}

/// The device's answer: its own status code and payload (HTTP 200 means "the device answered").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResponse {
    pub status: i64,
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl IotHubClient {
    /// `POST /twins/{device}/modules/{module}/methods`.
    ///
    /// Only failures where the call cannot have reached the device are retried: 429 (the
    /// hub refused it) and connection set-up errors. A method call is not idempotent in
    /// general, and 404103/504101 are answers about the device.
    pub async fn invoke_module_method(
        &self,
        device: &str,
        module: &str,
        request: MethodRequest,
    ) -> Result<MethodResponse, IotHubError> {
        Ok(self.invoke(device, module, &request).await?.0)
    }

    /// Pings `$edgeAgent` and returns the round-trip time. `Ok` means the agent process
    /// is up and connected; 404103 ([`ErrorKind::DeviceNotOnline`]) that it is not
    /// connected; 504101 ([`ErrorKind::GatewayTimeout`]) that it did not answer in time.
    pub async fn ping_edge_agent(
        &self,
        device: &str,
        response_timeout: Duration,
    ) -> Result<Duration, IotHubError> {
        let request = MethodRequest::new("ping", serde_json::json!({}))
            .with_response_timeout(response_timeout);
        let (answer, latency) = self.invoke(device, "$edgeAgent", &request).await?;
        if answer.status != 200 {
            return Err(IotHubError::new(
                ErrorKind::BadResponse,
                Operation::InvokeMethod,
                format!("$edgeAgent answered ping with status {}", answer.status),
            ));
        }
        Ok(latency)
    }

    async fn invoke(
        &self,
        device: &str,
        module: &str,
        request: &MethodRequest,
    ) -> Result<(MethodResponse, Duration), IotHubError> {
        let operation = Operation::InvokeMethod;
        check_id(operation, "device id", device)?;
        check_id(operation, "module id", module)?;
        request.validate()?;
        let call = Call {
            operation,
            method: Method::POST,
            path: format!(
                "/twins/{}/modules/{}/methods",
                urls::encode_segment(device),
                urls::encode_segment(module)
            ),
            body: Some(request.body()),
            headers: Vec::new(),
            timeout: Some(request.client_timeout()),
            device,
            module: Some(module),
            retryable: |e| e.kind() == ErrorKind::Throttled || e.was_unsent(),
        };
        let response = self.execute(&call).await?;
        let answer: Result<MethodResponse, _> = parse_json(operation, &response.body);
        // The hub billed the answer even if it is not what the API promises.
        let answered = answer
            .as_ref()
            .map_or(response.body.len() as u64, |a| payload_bytes(&a.payload));
        self.report_billed(operation, payload_bytes(&request.payload), answered);
        Ok((answer?, response.latency))
    }
}

/// The size of a method payload as serialized JSON: what IoT Hub bills a method by.
fn payload_bytes(payload: &serde_json::Value) -> u64 {
    serde_json::to_vec(payload).map_or(0, |v| v.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_timeout_follows_the_sdk_rule() {
        let r = MethodRequest::new("ping", serde_json::Value::Null)
            .with_response_timeout(Duration::from_secs(10))
            .with_connect_timeout(Duration::from_secs(5));
        assert_eq!(r.client_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn body_has_the_wire_names_and_defaults() {
        let body = MethodRequest::new("ping", serde_json::json!({})).body();
        assert_eq!(
            body,
            serde_json::json!({"methodName":"ping","payload":{},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0})
        );
    }

    #[test]
    fn out_of_range_timeouts_are_refused() {
        let base = MethodRequest::new("ping", serde_json::Value::Null);
        assert!(
            base.clone()
                .with_response_timeout(Duration::from_secs(4))
                .validate()
                .is_err()
        );
        assert!(
            base.clone()
                .with_response_timeout(Duration::from_secs(301))
                .validate()
                .is_err()
        );
        assert!(
            base.clone()
                .with_connect_timeout(Duration::from_secs(301))
                .validate()
                .is_err()
        );
        assert!(
            MethodRequest::new(" ", serde_json::Value::Null)
                .validate()
                .is_err()
        );
        assert!(base.validate().is_ok());
    }

    #[test]
    fn a_null_or_missing_payload_is_accepted() {
        let a: MethodResponse = serde_json::from_str(r#"{"status":200,"payload":null}"#).unwrap();
        let b: MethodResponse = serde_json::from_str(r#"{"status":200}"#).unwrap();
        assert_eq!(a, b);
    }
}
