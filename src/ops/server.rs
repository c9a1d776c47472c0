//! The operations endpoint: `/metrics` for Prometheus, `/healthz` and `/readyz` for the
//! kubelet's probes.
//!
//! Liveness only says the process serves HTTP; readiness says the controller is running
//! (its caches are synced), so a rolling update waits for the new replica to be useful
//! before the old one goes away.
//!
//! Wiring in `edgewatch run`: flatten [`OpsArgs`] into the command's arguments, build the
//! registry with [`OpsArgs::metrics`], hand clones of it to the controller and (as its
//! [`RequestObserver`](crate::iothub::RequestObserver)) to the IoT Hub clients, start the
//! server with [`OpsArgs::start`], call [`Readiness::set_ready`] once the controller
//! runs, and [`OpsServer::shutdown`] after it stopped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::metrics::Metrics;

/// The content type of the OpenMetrics text that `prometheus-client` writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `edgewatch run` flags of the ops server; flatten into the command's arguments with
/// `#[command(flatten)]` so the flag names match the Helm chart.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct OpsArgs {
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Leave out the per-module series (edgewatch_module_running, edgewatch_module_restarts),
    /// for fleets where devices × modules would be too many series.
    #[arg(long)]
    pub no_module_metrics: bool,
}

impl OpsArgs {
    /// The registry these flags ask for.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(!self.no_module_metrics)
    }

    /// Starts the ops server on `--metrics-address`.
    pub async fn start(
        &self,
        metrics: Metrics,
        readiness: Readiness,
    ) -> Result<OpsServer, OpsServerError> {
        OpsServer::start(self.metrics_address, metrics, readiness).await
    }
}

/// A flag the controller sets once it runs with synced caches; `/readyz` reads it.
///
/// Set it on standby replicas too (running, not holding the Lease): a rolling update
/// waits for the new pod to be ready before stopping the old leader, so a standby that
/// reported not ready would block every rollout.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A flag that starts not ready.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Why the ops server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OpsServerError {
    #[error("cannot listen on {addr} for /metrics, /healthz and /readyz: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the ops server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("the ops server task ended abnormally: {0}")]
    Task(#[source] tokio::task::JoinError),
}

#[derive(Clone)]
struct OpsState {
    metrics: Metrics,
    readiness: Readiness,
}

/// The routes, for embedding or for tests that drive them without a socket.
pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(serve_healthz))
        .route("/readyz", get(serve_readyz))
        .with_state(OpsState { metrics, readiness })
}

async fn serve_metrics(State(state): State<OpsState>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn serve_healthz() -> &'static str {
    "ok\n"
}

async fn serve_readyz(State(state): State<OpsState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// A running ops server. Dropping it leaves the server running until the process ends;
/// call [`OpsServer::shutdown`] to stop it gracefully.
#[derive(Debug)]
pub struct OpsServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl OpsServer {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(
        addr: SocketAddr,
        metrics: Metrics,
        readiness: Readiness,
    ) -> Result<Self, OpsServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| OpsServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| OpsServerError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(metrics, readiness);
        let task = tokio::spawn(serve(listener, app, async {
            let _ = stopped.await;
        }));
        tracing::info!(%local_addr, "serving /metrics, /healthz and /readyz");
        Ok(OpsServer {
            local_addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets in-flight requests finish and waits for the task.
    pub async fn shutdown(mut self) -> Result<(), OpsServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(OpsServerError::Task)?
            .map_err(OpsServerError::Serve)
    }
}

async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::report::ConditionStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A minimal HTTP/1.1 GET so the test exercises the real socket path without a client.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    async fn started() -> (OpsServer, Metrics, Readiness) {
        let metrics = Metrics::new(true);
        let readiness = Readiness::new();
        let server = OpsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            readiness.clone(),
        )
        .await
        .unwrap();
        (server, metrics, readiness)
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        ops: OpsArgs,
    }

    fn exports_modules(metrics: &Metrics) -> bool {
        metrics.set_module("iot", "w", "gw", "m", true, 0);
        metrics.encode().contains("edgewatch_module_running")
    }

    fn parse(args: &[&str]) -> Result<OpsArgs, clap::Error> {
        use clap::Parser as _;
        Cli::try_parse_from(std::iter::once("edgewatch").chain(args.iter().copied()))
            .map(|cli| cli.ops)
    }

    #[test]
    fn ops_flags_default_to_all_interfaces_and_module_metrics_on() {
        let ops = parse(&[]).unwrap();
        assert_eq!(ops.metrics_address, "0.0.0.0:8080".parse().unwrap());
        assert!(exports_modules(&ops.metrics()));
    }

    #[test]
    fn ops_flags_as_the_chart_passes_them() {
        let ops = parse(&["--metrics-address=0.0.0.0:9090", "--no-module-metrics"]).unwrap();
        assert_eq!(ops.metrics_address.port(), 9090);
        assert!(!exports_modules(&ops.metrics()));
    }

    #[test]
    fn a_metrics_address_without_port_is_refused() {
        let err = parse(&["--metrics-address=0.0.0.0"]).unwrap_err();
        assert!(err.to_string().contains("--metrics-address"), "{err}");
    }

    #[tokio::test]
    async fn ops_args_start_the_server_on_their_address() {
        let ops = parse(&["--metrics-address=127.0.0.1:0"]).unwrap();
        let server = ops.start(ops.metrics(), Readiness::new()).await.unwrap();
        assert_eq!(get(server.local_addr(), "/healthz").await.0, 200);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_openmetrics_text() {
        let (server, metrics, _) = started().await;
        metrics.set_watch_conditions("iot", "w", &[("Ready", ConditionStatus::True)]);
        let (status, head, body) = get(server.local_addr(), "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        assert!(body.contains(
            r#"edgewatch_watch_condition{namespace="iot",watch="w",type="Ready",status="True"} 1"#
        ));
        assert!(body.trim_end().ends_with("# EOF"));
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn readyz_follows_the_flag_while_healthz_is_always_ok() {
        let (server, _, readiness) = started().await;
        let addr = server.local_addr();
        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        readiness.set_ready(true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        readiness.set_ready(false);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        assert_eq!(get(addr, "/healthz").await.0, 200);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let (server, _, _) = started().await;
        assert_eq!(get(server.local_addr(), "/admin").await.0, 404);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn binding_a_taken_port_is_a_clear_error() {
        let (server, _, _) = started().await;
        let err = OpsServer::start(server.local_addr(), Metrics::new(true), Readiness::new())
            .await
            .unwrap_err();
        assert!(matches!(err, OpsServerError::Bind { .. }));
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_connections() {
        let (server, _, _) = started().await;
        let addr = server.local_addr();
        server.shutdown().await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
