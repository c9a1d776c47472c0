//! IoT Hub's error answers: status, `iothub-errorcode` header and body.
//!
//! Most errors use the classic body `{"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":
//! "Tracking ID:<id>-G:0-TimeStamp:<MM/dd/yyyy HH:mm:ss>"}`; direct-method errors
//! (404103, 504101) carry the newer form, a JSON object serialised inside `Message`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::json;

use super::timefmt::{error_stamp, with_z};

/// One IoT Hub error, ready to be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// Six-digit code; the HTTP status is its first three digits.
    pub code: u32,
    /// The name sent in `iothub-errorcode` and after `ErrorCode:`.
    pub name: &'static str,
    pub message: String,
    /// Render the JSON-in-Message form used by direct-method errors.
    pub nested: bool,
}

impl HubError {
    pub fn new(code: u32, name: &'static str, message: impl Into<String>) -> Self {
        HubError {
            code,
            name,
            message: message.into(),
            nested: false,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16((self.code / 1000) as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn device_not_found(device: &str) -> Self {
        Self::new(
            404001,
            "DeviceNotFound",
            format!("Device {device} not registered"),
        )
    }

    pub fn module_not_found(device: &str, module: &str) -> Self {
        Self::new(
            404010,
            "ModuleNotFound",
            format!("Module {module} on device {device} not registered"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401002, "IotHubUnauthorizedAccess", "Unauthorized")
    }

    pub fn bearer_unauthorized(method: &str, path: &str) -> Self {
        Self::new(
            401003,
            "IotHubUnauthorized",
            format!(
                "Principal is not authorized for {method} on {path} due to no assigned permissions"
            ),
        )
    }

    pub fn throttled() -> Self {
        Self::new(
            429001,
            "ThrottlingException",
            "The request was throttled: the operation's quota for this hub was exceeded",
        )
    }

    /// 403002: the hub's daily message quota is used up. `nested` renders the newer
    /// JSON-in-Message body (used for direct methods), otherwise the classic one.
    pub fn quota_exceeded(hub: &str, limit: u64, used: u64, nested: bool) -> Self {
        HubError {
            nested,
            ..Self::new(
                403002,
                "IotHubQuotaExceeded",
                format!(
                    "Total number of messages on IotHub '{hub}' exceeded the allocated quota. Max allowed message count: '{limit}', current message count: '{used}'. Billable operations are refused until the quota resets at 00:00 UTC."
                ),
            )
        }
    }

    pub fn server_error() -> Self {
        Self::new(
            500001,
            "ServerError",
            "An internal error occurred (injected by the simulator)",
        )
    }

    pub fn argument_invalid(message: impl Into<String>) -> Self {
        Self::new(400004, "ArgumentInvalid", message)
    }

    pub fn format_error(message: impl Into<String>) -> Self {
        Self::new(400006, "IotHubFormatError", message)
    }

    pub fn invalid_api_version(given: Option<&str>) -> Self {
        let text = match given {
            Some(v) => format!("Invalid api-version {v:?}"),
            None => "The api-version query parameter is required".to_string(),
        };
        Self::new(400001, "InvalidProtocolVersion", text)
    }

    pub fn not_found_path(path: &str) -> Self {
        Self::new(
            404000,
            "NotFound",
            format!("No IoT Hub operation matches {path}"),
        )
    }

    pub fn device_not_online() -> Self {
        HubError {
            nested: true,
            ..Self::new(
                404103,
                "DeviceNotOnline",
                "Timed out waiting for device to connect. The requested device isn't online or hasn't registered the direct method callback. To learn more, see https://aka.ms/iothub404103",
            )
        }
    }

    pub fn gateway_timeout(seconds: u64) -> Self {
        HubError {
            nested: true,
            ..Self::new(
                504101,
                "GatewayTimeout",
                format!(
                    "Timed out waiting for the response from device after {seconds} seconds. To learn more, see https://aka.ms/iothub504101"
                ),
            )
        }
    }

    /// The full HTTP answer, stamped with `now` and a fresh tracking id.
    pub fn render(&self, now: Timestamp) -> Response {
        let tracking = format!("{:032x}", rand::random::<u128>());
        let message = if self.nested {
            json!({
                "errorCode": self.code,
                "trackingId": format!("{tracking}-G:0-TimeStamp:{}", error_stamp(now)),
                "message": self.message,
                "timestampUtc": with_z(now),
            })
            .to_string()
        } else {
            format!("ErrorCode:{};{}", self.name, self.message)
        };
        let body = json!({
            "Message": message,
            "ExceptionMessage": format!("Tracking ID:{tracking}-G:0-TimeStamp:{}", error_stamp(now)),
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("iothub-errorcode", HeaderValue::from_static(self.name));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn classic_body_and_header() {
        let now: Timestamp = "2020-11-03T07:18:24Z".parse().unwrap();
        let r = HubError::unauthorized().render(now);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["iothub-errorcode"], "IotHubUnauthorizedAccess");
        let body = body_of(r).await;
        assert_eq!(
            body["Message"],
            "ErrorCode:IotHubUnauthorizedAccess;Unauthorized"
        );
        let em = body["ExceptionMessage"].as_str().unwrap();
        assert!(
            em.starts_with("Tracking ID:") && em.ends_with("-G:0-TimeStamp:11/03/2020 07:18:24"),
            "{em}"
        );
    }

    #[tokio::test]
    async fn quota_exceeded_is_403002_in_either_body_form() {
        let now: Timestamp = "2026-03-01T23:00:00Z".parse().unwrap();
        let classic = HubError::quota_exceeded("hub", 10, 12, false).render(now);
        assert_eq!(classic.status(), StatusCode::FORBIDDEN);
        assert_eq!(classic.headers()["iothub-errorcode"], "IotHubQuotaExceeded");
        let body = body_of(classic).await;
        let message = body["Message"].as_str().unwrap();
        assert!(
            message.starts_with("ErrorCode:IotHubQuotaExceeded;") && message.contains("'10'"),
            "{message}"
        );
        let nested = body_of(HubError::quota_exceeded("hub", 10, 12, true).render(now)).await;
        let inner: serde_json::Value =
            serde_json::from_str(nested["Message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["errorCode"], 403002);
    }

    #[tokio::test]
    async fn direct_method_errors_nest_json_in_message() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let r = HubError::device_not_online().render(now);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body = body_of(r).await;
        let inner: serde_json::Value =
            serde_json::from_str(body["Message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["errorCode"], 404103);
        assert_eq!(
            HubError::gateway_timeout(5).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }
}
