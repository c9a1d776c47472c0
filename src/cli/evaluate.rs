//! `edgewatch evaluate`: judge one device from twin files, exactly as exported by
//! `az iot hub module-twin show` or the REST GET, without IoT Hub or Kubernetes.
//!
//! Exit codes: 0 Ready, 1 not Ready (False or Unknown), 2 bad input (the message names
//! the file and what is wrong).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::parse_duration;

use crate::health::{DeviceTwins, PingError, PingOutcome, Policy, evaluate};
use crate::twin::{EdgeAgentTwin, EdgeHubTwin, ModuleTwin, TwinError};

use super::render::{self, OutputFormat};

/// Judge one IoT Edge device from its twin files.
#[derive(clap::Args, Debug, Clone)]
pub struct EvaluateArgs {
    /// The `$edgeAgent` module twin (JSON).
    #[arg(long, value_name = "FILE")]
    pub edge_agent: PathBuf,
    /// The `$edgeHub` module twin (JSON).
    #[arg(long, value_name = "FILE")]
    pub edge_hub: Option<PathBuf>,
    /// A custom module twin whose desired properties must be reported back (repeatable).
    #[arg(long = "module-twin", value_name = "FILE")]
    pub module_twins: Vec<PathBuf>,
    /// What a `ping` of `$edgeAgent` returned.
    #[arg(long, value_enum, default_value_t = PingArg::Skipped)]
    pub ping: PingArg,
    /// Evaluation time (RFC 3339); defaults to the current time.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<Timestamp>,
    /// A report older than this is stale unless the agent answered ping.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub stale_after: Duration,
    /// Time a device has to apply a desired change before it counts as pending.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub deployment_grace: Duration,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `--ping` values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingArg {
    /// The agent answered (latency reported as 0: not measured).
    Ok,
    /// 404103 DeviceNotOnline.
    NotOnline,
    /// 504101 or a client timeout.
    Timeout,
    /// No ping made.
    Skipped,
}

impl PingArg {
    fn outcome(self) -> PingOutcome {
        match self {
            PingArg::Ok => PingOutcome::Responded { latency_ms: 0 },
            PingArg::NotOnline => {
                PingOutcome::NotOnline(PingError::new(Some(404_103), Some("DeviceNotOnline"), ""))
            }
            PingArg::Timeout => PingOutcome::Timeout(PingError::default()),
            PingArg::Skipped => PingOutcome::Skipped,
        }
    }
}

/// A problem with one input file, named by its flag and path.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {problem}", path.display())]
pub(crate) struct InputError {
    flag: &'static str,
    path: PathBuf,
    problem: String,
}

impl InputError {
    fn new(flag: &'static str, path: &Path, problem: impl Into<String>) -> InputError {
        InputError {
            flag,
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Runs the subcommand and returns its exit code.
pub fn run(args: &EvaluateArgs) -> ExitCode {
    let twins = match load_twins(args) {
        Ok(twins) => twins,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let policy = Policy {
        stale_after: args.stale_after,
        deployment_grace: args.deployment_grace,
        ..Policy::default()
    };
    let now = args.now.unwrap_or_else(Timestamp::now);
    let report = evaluate(&twins, &args.ping.outcome(), None, &policy, now).report;
    let rendered = match render::output(&report, args.output, render::device::report) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: cannot render the report: {err}");
            return ExitCode::from(2);
        }
    };
    // A closed pipe (`| head`) is not an error of the evaluation.
    let _ = std::io::stdout().write_all(rendered.as_bytes());
    if report.is_ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Reads and parses every twin file, checking that they describe the same device.
pub(crate) fn load_twins(args: &EvaluateArgs) -> Result<DeviceTwins, InputError> {
    let agent = load("--edge-agent", &args.edge_agent, EdgeAgentTwin::from_slice)?;
    let mut twins = DeviceTwins::new(agent);
    if let Some(path) = &args.edge_hub {
        let hub = load("--edge-hub", path, EdgeHubTwin::from_slice)?;
        same_device(
            &mut twins.device_id,
            hub.identity.device_id.as_deref(),
            "--edge-hub",
            path,
        )?;
        twins.edge_hub = Some(hub);
    }
    for path in &args.module_twins {
        let module = load("--module-twin", path, ModuleTwin::from_slice)?;
        let id = module.identity.device_id.as_deref();
        same_device(&mut twins.device_id, id, "--module-twin", path)?;
        twins.modules.push(module);
    }
    Ok(twins)
}

fn load<T>(
    flag: &'static str,
    path: &Path,
    parse: fn(&[u8]) -> Result<T, TwinError>,
) -> Result<T, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(flag, path, format!("cannot read the file: {e}")))?;
    parse(&bytes).map_err(|e| InputError::new(flag, path, e.to_string()))
}

/// Twins of two devices would give a meaningless verdict; fragments without a device id pass.
fn same_device(
    device_id: &mut String,
    other: Option<&str>,
    flag: &'static str,
    path: &Path,
) -> Result<(), InputError> {
    match other {
        Some(other) if device_id.is_empty() => {
            *device_id = other.to_owned();
            Ok(())
        }
        Some(other) if other != device_id => Err(InputError::new(
            flag,
            path,
            format!("twin of device {other:?}, but the other twins are of device {device_id:?}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_use_the_spec_grammar() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("PT10M"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("2h 5m").is_err());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .to_string()
                .contains("\"soon\"")
        );
    }
}
