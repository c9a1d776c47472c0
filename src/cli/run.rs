//! `edgewatch run`: the operator. Watches `EdgeDeviceWatch` objects, sweeps their devices
//! through IoT Hub, writes status and Events; with leader election so several replicas
//! can run safely.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::api::parse_duration;
use crate::controller::{
    Context, ControllerOptions, HubClientTemplate, HubSweeper, Leadership, LeaseSettings,
    QuotaBudget, StatusLimits, run_controller,
};
use crate::errors::chain;
use crate::ops::metrics::Metrics;
use crate::ops::server::{OpsArgs, Readiness};

/// The controller name in Events and the default Lease name.
pub(crate) const CONTROLLER_NAME: &str = "edgewatch";

/// Log line format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Arguments of `edgewatch run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Watch one namespace only (default: all namespaces).
    #[arg(long, env = "EDGEWATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Watches reconciled at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Log format (`json` for log pipelines).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Compete for a Lease so only one replica reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = CONTROLLER_NAME)]
    pub lease_name: String,
    /// Namespace of the leader Lease (in a pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// How long the Lease holds without renewal (`15s`); a successor takes over after it.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease and in Events (in a pod: the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Send IoT Hub requests here instead of `https://<hub>` (the simulator, a private endpoint).
    #[arg(long)]
    pub iothub_endpoint: Option<String>,
    /// Extra CA certificates (PEM) to trust for IoT Hub (TLS is always verified).
    #[arg(long)]
    pub iothub_ca_file: Option<PathBuf>,
    /// Per-device entries listed in a watch's status (worst first).
    #[arg(long, default_value_t = 100)]
    pub max_device_entries: usize,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// Runs the operator until SIGTERM or Ctrl-C; exit 0 after a clean shutdown, 2 when it
/// could not start.
pub fn run(args: &RunArgs) -> ExitCode {
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(operate(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %chain(error.as_ref()), "edgewatch run failed");
            ExitCode::from(2)
        }
    }
}

async fn operate(args: &RunArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let metrics = args.ops.metrics();
    let readiness = Readiness::new();
    let ops = args
        .ops
        .start(metrics.clone(), readiness.clone())
        .await
        .context("starting the metrics and probe server")?;
    let identity = identity(args);
    let leadership = elect(client.clone(), args, &identity).await?;
    let leader = leadership.subscribe();
    tokio::spawn(mirror_leadership(leadership.subscribe(), metrics.clone()));
    let reporter = Reporter {
        controller: CONTROLLER_NAME.to_owned(),
        instance: Some(identity.clone()),
    };
    let sweeper = HubSweeper::new(hub_template(args, &metrics)?, QuotaBudget::default());
    let mut ctx = Context::new(
        client.clone(),
        Recorder::new(client, reporter),
        sweeper,
        Box::new(move || *leader.borrow()),
    );
    ctx.metrics = metrics;
    ctx.limits = StatusLimits {
        max_device_entries: args.max_device_entries,
        ..StatusLimits::default()
    };
    let options = ControllerOptions {
        namespace: args.namespace.clone(),
        concurrency: args.concurrency,
    };
    tracing::info!(identity, namespace = ?args.namespace, "edgewatch controller starting");
    // Standby replicas are ready too: a rollout waits for the new pod before it stops
    // the old leader.
    readiness.set_ready(true);
    run_controller(Arc::new(ctx), options, shutdown_signal()).await;
    readiness.set_ready(false);
    tracing::info!("controller stopped; releasing the Lease");
    leadership.resign().await;
    if let Err(error) = ops.shutdown().await {
        tracing::warn!(error = %chain(&error), "metrics server did not stop cleanly");
    }
    Ok(())
}

fn identity(args: &RunArgs) -> String {
    args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| CONTROLLER_NAME.to_owned());
        format!("{host}-{}", std::process::id())
    })
}

async fn elect(client: Client, args: &RunArgs, identity: &str) -> anyhow::Result<Leadership> {
    if !args.leader_election {
        return Ok(Leadership::always());
    }
    let settings = LeaseSettings {
        name: args.lease_name.clone(),
        namespace: args.lease_namespace.clone(),
        identity: identity.to_owned(),
        duration: args.lease_duration,
        grace: args.lease_duration / 3,
    };
    Leadership::elect(client, &settings).await.with_context(|| {
        format!(
            "joining leader election on Lease {}/{}",
            settings.namespace, settings.name
        )
    })
}

/// Keeps `edgewatch_leader` equal to this replica's leadership.
async fn mirror_leadership(mut leader: tokio::sync::watch::Receiver<bool>, metrics: Metrics) {
    loop {
        metrics.set_leader(*leader.borrow_and_update());
        if leader.changed().await.is_err() {
            metrics.set_leader(false);
            return;
        }
    }
}

fn hub_template(args: &RunArgs, metrics: &Metrics) -> anyhow::Result<HubClientTemplate> {
    let extra_ca_pem = args
        .iothub_ca_file
        .as_ref()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    Ok(HubClientTemplate {
        endpoint: args.iothub_endpoint.clone(),
        extra_ca_pem,
        observer: Some(Arc::new(metrics.clone())),
        ..HubClientTemplate::default()
    })
}

/// Completes on SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("interrupt received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Logs go to stderr, in colour only when it is a terminal.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
