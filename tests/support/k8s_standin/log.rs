//! What clients asked for (the request log) and what the server should do wrong (fault injection).

use std::time::Duration;

use super::error::ApiError;

/// One request as the stand-in received it. Headers are not kept, so bearer tokens never land here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
    /// HTTP status the stand-in answered with (200 for watches, whose errors travel in-stream).
    pub status: u16,
}

impl RecordedRequest {
    /// The decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.query_param("watch").as_deref(), Some("true" | "1"))
    }

    /// True for a PATCH of `…/<plural>/<name>/status` in `namespace`.
    pub fn is_status_patch(&self, plural: &str, namespace: &str, name: &str) -> bool {
        self.method == "PATCH"
            && self
                .path
                .ends_with(&format!("/namespaces/{namespace}/{plural}/{name}/status"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status code (and a matching `Status` body) instead of serving.
    Fail { code: u16, retry_after: Option<u32> },
    /// Serve normally after waiting this long.
    Delay(Duration),
}

/// A rule that makes the next `times` matching requests misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    method: Option<String>,
    path_contains: String,
    times: usize,
    action: FaultAction,
}

impl Fault {
    /// Fail matching requests with `code` (500, 429, 503, 401, 403, ...).
    pub fn fail(code: u16) -> Self {
        Self {
            method: None,
            path_contains: String::new(),
            times: 1,
            action: FaultAction::Fail {
                code,
                retry_after: None,
            },
        }
    }

    /// Hold matching requests for `delay` before serving them.
    pub fn delay(delay: Duration) -> Self {
        Self {
            method: None,
            path_contains: String::new(),
            times: 1,
            action: FaultAction::Delay(delay),
        }
    }

    /// Only requests with this method (`"PATCH"`) whose path contains `path_contains`.
    pub fn on(mut self, method: &str, path_contains: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self.path_contains = path_contains.to_string();
        self
    }

    /// Any method, path containing `path_contains`.
    pub fn on_path(mut self, path_contains: &str) -> Self {
        self.method = None;
        self.path_contains = path_contains.to_string();
        self
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Add a `Retry-After` header to injected failures.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        if let FaultAction::Fail { retry_after, .. } = &mut self.action {
            *retry_after = Some(seconds);
        }
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}

/// Consume one use of the first matching fault, if any.
pub fn take_fault(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<FaultAction> {
    let fault = faults.iter_mut().find(|f| f.matches(method, path))?;
    fault.times -= 1;
    let action = fault.action.clone();
    faults.retain(|f| f.times > 0);
    Some(action)
}

/// The `Status` an injected failure answers with.
pub fn injected_error(code: u16, retry_after: Option<u32>) -> ApiError {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let mut error = ApiError::new(code, reason, format!("injected fault: {reason}"));
    error.retry_after = retry_after;
    error
}
