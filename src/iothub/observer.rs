//! Hooks through which the client reports what it did, so the controller can export
//! the metrics of `docs/metrics.md` without the client knowing about Prometheus.

use std::time::Duration;

use super::billing::BilledOperation;

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

    /// How IoT Hub bills the operation; `None` for token requests, which go to Entra ID.
    pub fn billed_as(self) -> Option<BilledOperation> {
        match self {
            Operation::GetTwin | Operation::GetModuleTwin => Some(BilledOperation::TwinRead),
            Operation::ListModules => Some(BilledOperation::Registry),
            Operation::Query => Some(BilledOperation::QueryPage),
            Operation::InvokeMethod => Some(BilledOperation::DirectMethod),
            Operation::Token => None,
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
    /// A successful answer cost `messages` of the hub's daily quota, by the standard-tier
    /// rules of [`billing`](super::billing) (4 KB chunks). Called once per twin GET, per
    /// query page, per method call and per module listing (0); never for errors.
    fn billed(&self, hub: &str, operation: Operation, messages: u64) {
        let _ = (hub, operation, messages);
    }
}

/// Observer that ignores everything; the default when no metrics are wanted.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl RequestObserver for NoopObserver {
    fn request_finished(&self, _: &str, _: Operation, _: &str, _: Duration) {}
    fn throttled(&self, _: &str, _: Operation) {}
    fn retried(&self, _: &str, _: Operation) {}
}
