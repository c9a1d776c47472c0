//! `edgewatch sim`: run the IoT Hub simulator until interrupted.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sim::{
    self, DailyQuota, QueryRefusals, SasPolicy, Scenario, SimConfig, ThrottleQuotas, TlsMode,
};

/// Transport security of the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// Plain HTTP.
    Plain,
    /// HTTPS with a generated CA; clients must trust the CA PEM written to --ca-out.
    SelfSigned,
}

/// Throttling preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThrottleArg {
    /// No quotas.
    None,
    /// One S1 unit: 100 twin reads/s, 20 queries/min, 40 methods/s.
    S1,
}

/// Serve a simulated IoT Hub with a fleet of IoT Edge devices.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Number of generated devices (besides those of --scenario).
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// Scenario YAML: named devices and timed events (see docs/simulator.md).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Seed for generated devices, for reproducible fleets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    #[arg(long, value_enum, default_value_t = TlsArg::Plain)]
    pub tls: TlsArg,
    /// Where --tls self-signed writes the CA certificate.
    #[arg(long, value_name = "PATH", default_value = "edgewatch-sim-ca.pem")]
    pub ca_out: PathBuf,
    /// Shared access policy name of the printed connection string.
    #[arg(long, default_value = "service")]
    pub policy_name: String,
    /// Base64 policy key; a random one when omitted.
    #[arg(long, env = "EDGEWATCH_SIM_POLICY_KEY", hide_env_values = true)]
    pub policy_key: Option<String>,
    /// A bearer token to accept (stands in for a Microsoft Entra ID access token).
    #[arg(long, env = "EDGEWATCH_SIM_BEARER_TOKEN", hide_env_values = true)]
    pub bearer_token: Option<String>,
    /// Hub name shown in summaries.
    #[arg(long, default_value = "edgewatch-sim")]
    pub hub_name: String,
    #[arg(long, value_enum, default_value_t = ThrottleArg::None)]
    pub throttle: ThrottleArg,
    /// Daily message quota: free (8,000 in 0.5 KB chunks), s1[:UNITS] (400,000 per unit),
    /// s2[:UNITS] (6,000,000), s3[:UNITS] (300,000,000) or a number of messages. Over it,
    /// billable requests answer 403002 until 00:00 UTC (simulated). Default: none.
    #[arg(long, value_name = "TIER|N", value_parser = DailyQuota::parse)]
    pub daily_quota: Option<DailyQuota>,
    /// Background telemetry per device per simulated day, counted against the quota.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fleet_messages_per_device_day: u64,
    /// Answer projections (any SELECT but `SELECT *`) with 400 ArgumentInvalid.
    #[arg(long)]
    pub refuse_projections: bool,
    /// Answer WHERE clauses on `$metadata` paths with 400 ArgumentInvalid.
    #[arg(long)]
    pub refuse_metadata_filters: bool,
}

/// Runs the simulator; exit 0 after Ctrl-C, 2 on bad arguments or files, 1 on other failures.
pub fn run(args: SimArgs) -> ExitCode {
    match config_from(&args) {
        Ok(config) => match serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edgewatch sim: {e:#}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("edgewatch sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn config_from(args: &SimArgs) -> anyhow::Result<SimConfig> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::default(),
    };
    let policy = match &args.policy_key {
        Some(key) if crate::iothub::sas::signature(key, "check", 0).is_err() => {
            anyhow::bail!("--policy-key must be a base64 key")
        }
        Some(key) => SasPolicy {
            name: args.policy_name.clone(),
            key: key.clone(),
        },
        None => SasPolicy::generate(&args.policy_name),
    };
    Ok(SimConfig {
        hub_name: args.hub_name.clone(),
        scenario,
        devices: args.devices,
        seed: args.seed,
        policies: vec![policy],
        bearer_tokens: args.bearer_token.iter().cloned().collect(),
        tls: match args.tls {
            TlsArg::Plain => TlsMode::Plain,
            TlsArg::SelfSigned => TlsMode::SelfSigned {
                ca_out: args.ca_out.clone(),
            },
        },
        bind: SocketAddr::new(args.bind, args.port),
        throttle: match args.throttle {
            ThrottleArg::None => ThrottleQuotas::default(),
            ThrottleArg::S1 => ThrottleQuotas::s1(1),
        },
        daily_quota: args.daily_quota,
        fleet_messages_per_device_day: args.fleet_messages_per_device_day,
        query_refusals: QueryRefusals {
            projections: args.refuse_projections,
            metadata_filters: args.refuse_metadata_filters,
        },
        ..SimConfig::default()
    })
}

fn serve(config: SimConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let quota_line = quota_summary(&config);
    runtime.block_on(async {
        let handle = sim::start(config).await.context("starting the simulator")?;
        let s = handle.fleet_summary();
        println!("connection string: {}", handle.connection_string());
        match handle.ca_path() {
            Some(p) => println!("CA certificate:    {}", p.display()),
            None => println!("CA certificate:    none (plain HTTP)"),
        }
        println!(
            "fleet: hub {} at {}, {} edge devices ({} online), {} module twins, {} scripted events; admin API at {}/_sim/status",
            handle.hub_name(),
            handle.base_url(),
            s.devices,
            s.online,
            s.module_twins,
            s.scheduled_events,
            handle.base_url()
        );
        if let Some(line) = &quota_line {
            println!("{line}");
        }
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        handle.shutdown().await;
        Ok(())
    })
}

/// One line about the daily quota and fleet telemetry, when either is configured.
fn quota_summary(config: &SimConfig) -> Option<String> {
    let fleet = config.fleet_messages_per_device_day;
    let quota = config.daily_quota.map(|q| {
        format!(
            "daily quota: {} messages per UTC day in {}-byte chunks (403002 IotHubQuotaExceeded when used up)",
            q.messages,
            q.meter.chunk_bytes()
        )
    });
    match (quota, fleet) {
        (None, 0) => None,
        (Some(q), 0) => Some(q),
        (q, n) => Some(format!(
            "{}; fleet telemetry: {n} messages per device per day",
            q.unwrap_or_else(|| "daily quota: none".into())
        )),
    }
}
