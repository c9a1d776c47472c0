//! An IoT Hub simulator: a fleet of simulated IoT Edge devices behind IoT Hub's service
//! REST API (same paths, auth, error bodies and paging), over HTTP or HTTPS.
//!
//! Tests, the demo and benchmarks embed it in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), edgewatch::sim::SimError> {
//! use edgewatch::sim::{self, Action, ClockMode, SimConfig};
//! let handle = sim::start(SimConfig {
//!     devices: 10,
//!     clock: ClockMode::manual_from_now(),
//!     ..SimConfig::default()
//! })
//! .await?;
//! let conn = handle.connection_string(); // HostName=localhost:PORT;SharedAccessKeyName=...
//! handle.apply("edge-0001", Action::Offline {})?;
//! handle.clock().advance(jiff::SignedDuration::from_mins(5)).ok();
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod clock;
pub mod device;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod metering;
pub mod query;
pub mod scenario;
pub mod server;
pub mod timefmt;
pub mod tls;
pub mod twin;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use auth::SasPolicy;
pub use clock::{ClockError, ClockMode, SimClock};
pub use device::{ActionError, MethodOutcome};
pub use faults::{FaultRates, RequestCounts, ThrottleQuotas};
pub use fleet::FleetSummary;
pub use metering::{BillingCounts, DailyQuota, DayCounts, PerKind, QuotaSettings};
pub use query::QueryRefusals;
pub use scenario::{
    Action, DeployOutcome, DesiredStatus, DeviceSpec, GenerateSpec, ModuleSpec, RestartPolicy,
    Scenario, TimedEvent,
};

use auth::Authenticator;
use faults::{Chaos, Counters};
use fleet::Fleet;
use metering::HubMeter;

/// Plain HTTP, or HTTPS with a freshly generated CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Plain,
    /// Generates a CA and a localhost certificate; writes the CA PEM to `ca_out`.
    SelfSigned {
        ca_out: PathBuf,
    },
}

/// Everything the simulator is started with.
#[derive(Clone)]
pub struct SimConfig {
    /// Shown in summaries; IoT Hub would use it in the host name.
    pub hub_name: String,
    /// Named devices and scripted events.
    pub scenario: Scenario,
    /// Devices to generate in addition to the scenario's (ids `edge-0001`, ...).
    /// Ignored when the scenario has its own `generate` section.
    pub devices: usize,
    /// Seed for generated devices and fault dice (reproducible fleets).
    pub seed: u64,
    /// Accepted shared access policies; a `service` policy with a random key when empty.
    pub policies: Vec<SasPolicy>,
    /// Bearer tokens accepted verbatim, standing in for Entra ID access tokens.
    pub bearer_tokens: Vec<String>,
    pub tls: TlsMode,
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The host name clients use (and SAS tokens name, with or without the port);
    /// `localhost:<port>` by default, the bare `localhost` on port 443 like a real hub.
    pub host_name: Option<String>,
    pub clock: ClockMode,
    pub faults: FaultRates,
    pub throttle: ThrottleQuotas,
    /// The hub's daily message quota (and its tier's chunk size); `None` enforces none.
    pub daily_quota: Option<DailyQuota>,
    /// Background telemetry of every device against the same quota, per device per day.
    pub fleet_messages_per_device_day: u64,
    /// Query features to refuse with 400 ArgumentInvalid, like a hub without them.
    pub query_refusals: QueryRefusals,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hub_name: "edgewatch-sim".into(),
            scenario: Scenario::default(),
            devices: 0,
            seed: 1,
            policies: Vec::new(),
            bearer_tokens: Vec::new(),
            tls: TlsMode::Plain,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            host_name: None,
            clock: ClockMode::Wall,
            faults: FaultRates::default(),
            throttle: ThrottleQuotas::default(),
            daily_quota: None,
            fleet_messages_per_device_day: 0,
            query_refusals: QueryRefusals::default(),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("hub_name", &self.hub_name)
            .field("named_devices", &self.scenario.devices.len())
            .field("devices", &self.devices)
            .field("seed", &self.seed)
            .field("policies", &self.policies)
            .field("bearer_tokens", &self.bearer_tokens.len())
            .field("tls", &self.tls)
            .field("bind", &self.bind)
            .field("clock", &self.clock)
            .field("daily_quota", &self.daily_quota)
            .field(
                "fleet_messages_per_device_day",
                &self.fleet_messages_per_device_day,
            )
            .field("query_refusals", &self.query_refusals)
            .finish_non_exhaustive()
    }
}

/// Why the simulator could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot write the CA certificate to {path}: {source}")]
    WriteCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no device {0:?} in the simulated fleet")]
    UnknownDevice(String),
    #[error(transparent)]
    Action(#[from] ActionError),
}

/// State shared by all request handlers.
pub struct SimState {
    pub(crate) fleet: Fleet,
    pub(crate) clock: SimClock,
    pub(crate) auth: Authenticator,
    pub(crate) chaos: Chaos,
    pub(crate) counters: Counters,
    pub(crate) meter: HubMeter,
    pub(crate) refusals: std::sync::Mutex<QueryRefusals>,
    pub(crate) hub_name: String,
    pub(crate) host_name: String,
    pub(crate) base_url: String,
}

/// A running simulator.
pub struct SimHandle {
    state: Arc<SimState>,
    addr: SocketAddr,
    tls: bool,
    policies: Vec<SasPolicy>,
    ca_pem: Option<String>,
    ca_path: Option<PathBuf>,
    server: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("host_name", &self.state.host_name)
            .finish_non_exhaustive()
    }
}

/// Builds the fleet, binds the listener and serves until [`SimHandle::shutdown`].
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config.faults.validate().map_err(SimError::Config)?;
    let policies = if config.policies.is_empty() {
        vec![SasPolicy::generate("service")]
    } else {
        config.policies.clone()
    };
    for p in &policies {
        if p.name.is_empty() || crate::iothub::sas::signature(&p.key, "x", 0).is_err() {
            return Err(SimError::Config(format!(
                "policy {:?} needs a name and a base64 key",
                p.name
            )));
        }
    }
    let clock = SimClock::new(config.clock);
    let generate = config.scenario.generate.clone().or_else(|| {
        (config.devices > 0).then(|| GenerateSpec {
            count: config.devices,
            id_prefix: "edge-".into(),
            sites: 10,
        })
    });
    let seed = config.scenario.seed.unwrap_or(config.seed);
    let fleet = Fleet::build(&config.scenario, generate.as_ref(), seed, clock.now())
        .map_err(SimError::Config)?;

    let listener = std::net::TcpListener::bind(config.bind).map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    let host_name = config.host_name.clone().unwrap_or_else(|| {
        if addr.port() == 443 {
            "localhost".to_string()
        } else {
            format!("localhost:{}", addr.port())
        }
    });
    let tls = !matches!(config.tls, TlsMode::Plain);
    let hub_name = config
        .scenario
        .hub
        .clone()
        .unwrap_or(config.hub_name.clone());
    let meter = HubMeter::new(
        QuotaSettings {
            daily_quota: config.daily_quota,
            fleet_messages_per_device_day: config.fleet_messages_per_device_day,
        },
        fleet.len(),
        clock.now(),
    );
    let state = Arc::new(SimState {
        fleet,
        auth: Authenticator::new(&host_name, &policies, &config.bearer_tokens)
            .with_listen_port(addr.port()),
        chaos: Chaos::new(config.throttle, config.faults, seed ^ 0x5eed),
        counters: Counters::default(),
        meter,
        refusals: std::sync::Mutex::new(config.query_refusals),
        hub_name,
        base_url: base_url(tls, &host_name, addr.port()),
        host_name,
        clock,
    });
    let app = server::router(state.clone()).into_make_service();
    let server = axum_server::Handle::new();
    let bind_err = |source| SimError::Bind {
        addr: config.bind,
        source,
    };
    let (task, ca_pem, ca_path) = match &config.tls {
        TlsMode::Plain => {
            let srv = axum_server::from_tcp(listener)
                .map_err(bind_err)?
                .handle(server.clone());
            (tokio::spawn(srv.serve(app)), None, None)
        }
        TlsMode::SelfSigned { ca_out } => {
            let generated = tls::self_signed()?;
            write_ca(ca_out, &generated.ca_pem)?;
            let rustls =
                axum_server::tls_rustls::RustlsConfig::from_config(generated.server_config);
            let srv = axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
                .map_err(bind_err)?
                .handle(server.clone());
            (
                tokio::spawn(srv.serve(app)),
                Some(generated.ca_pem),
                Some(ca_out.clone()),
            )
        }
    };
    Ok(SimHandle {
        state,
        addr,
        tls: ca_pem.is_some(),
        policies,
        ca_pem,
        ca_path,
        server,
        task,
    })
}

/// `scheme://host[:port]`: the port is left out only when the host name carries one or
/// the port is the scheme's default.
fn base_url(tls: bool, host_name: &str, port: u16) -> String {
    let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
    let has_port = host_name
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if has_port || port == default_port {
        format!("{scheme}://{host_name}")
    } else {
        format!("{scheme}://{host_name}:{port}")
    }
}

fn write_ca(path: &Path, pem: &str) -> Result<(), SimError> {
    let err = |source| SimError::WriteCa {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, pem).map_err(err)
}

impl SimHandle {
    /// `http://localhost:PORT` or `https://localhost:PORT` (`https://localhost` on 443).
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The host name clients put in connection strings and SAS tokens (`localhost:PORT`,
    /// or the bare `localhost` on port 443).
    pub fn host_name(&self) -> &str {
        &self.state.host_name
    }

    /// The socket the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A service connection string for the first policy.
    pub fn connection_string(&self) -> String {
        let p = &self.policies[0];
        format!(
            "HostName={};SharedAccessKeyName={};SharedAccessKey={}",
            self.state.host_name, p.name, p.key
        )
    }

    /// The accepted policies (name and key), e.g. to sign tokens directly.
    pub fn policies(&self) -> &[SasPolicy] {
        &self.policies
    }

    /// The CA certificate (PEM) clients must trust, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Where the CA PEM was written, when serving HTTPS.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// The simulator's clock (advance it when it is manual).
    pub fn clock(&self) -> &SimClock {
        &self.state.clock
    }

    /// Applies an action to one device now.
    pub fn apply(&self, device: &str, action: Action) -> Result<(), SimError> {
        let now = self.state.clock.now();
        let mut dev = self
            .state
            .fleet
            .device(device, now)
            .ok_or_else(|| SimError::UnknownDevice(device.to_string()))?;
        dev.apply(&action, now)?;
        Ok(())
    }

    /// Replaces the injected-fault rates.
    pub fn set_faults(&self, rates: FaultRates) -> Result<(), SimError> {
        rates.validate().map_err(SimError::Config)?;
        self.state.chaos.set_rates(rates);
        Ok(())
    }

    /// Replaces the throttle quotas (and starts fresh windows).
    pub fn set_throttle(&self, quotas: ThrottleQuotas) {
        self.state.chaos.set_quotas(quotas);
    }

    /// What has been served so far.
    pub fn request_counts(&self) -> RequestCounts {
        self.state.counters.snapshot()
    }

    /// What the hub billed so far, by operation kind and simulated UTC day, with the
    /// fleet's background telemetry brought up to the simulator's now.
    pub fn billing_counts(&self) -> BillingCounts {
        self.state.meter.snapshot(self.state.clock.now())
    }

    /// Replaces the daily quota and the fleet's background rate from now on.
    pub fn set_quota(&self, settings: QuotaSettings) {
        self.state
            .meter
            .set_settings(settings, self.state.clock.now());
    }

    /// Replaces which query features the hub refuses.
    pub fn set_query_refusals(&self, refusals: QueryRefusals) {
        *self
            .state
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = refusals;
    }

    /// Device ids, sorted.
    pub fn device_ids(&self) -> Vec<String> {
        self.state.fleet.ids()
    }

    pub fn fleet_summary(&self) -> FleetSummary {
        self.state.fleet.summary(self.state.clock.now())
    }

    /// The hub's name as configured.
    pub fn hub_name(&self) -> &str {
        &self.state.hub_name
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(self) {
        self.server.shutdown();
        let _ = self.task.await;
    }
}
