//! Hooks through which the client reports what it did, so the controller can export
//! the metrics of `docs/metrics.md` without the client knowing about Prometheus.

use std::time::Duration;

/// The IoT Hub operations the client performs, as named in the metrics contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    GetTwin,
    GetModuleTwin,
    ListModules,
    Query,
    InvokeMethod,
    /// Acquiring an Entra ID access token (SAS tokens are computed locally and never counted).
    Token,
}

impl Operation {
    /// The `operation` label value of `edgewatch_iothub_*` metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetTwin => "get_twin",
            Operation::GetModuleTwin => "get_module_twin",
            Operation::ListModules => "list_modules",
            Operation::Query => "query",
            Operation::InvokeMethod => "invoke_method",
            Operation::Token => "token",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives one call per HTTP attempt and per throttle/retry event.
///
/// Implementations must be cheap: they run on the request path.
pub trait RequestObserver: Send + Sync {
    /// One attempt finished; `outcome` is `ok` or an [`ErrorKind`](super::ErrorKind) name.
    fn request_finished(&self, hub: &str, operation: Operation, outcome: &str, latency: Duration);
    /// The hub answered 429.
    fn throttled(&self, hub: &str, operation: Operation);
    /// A failed attempt is about to be repeated.
    fn retried(&self, hub: &str, operation: Operation);
}

/// Observer that ignores everything; the default when no metrics are wanted.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn request_finished(&self, _: &str, _: Operation, _: &str, _: Duration) {}
    fn throttled(&self, _: &str, _: Operation) {}
    fn retried(&self, _: &str, _: Operation) {}
}
