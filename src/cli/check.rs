//! `edgewatch check -f WATCH.yaml`: one reconcile of an `EdgeDeviceWatch` file against an
//! IoT Hub (or the simulator) from a laptop, cron job or CI pipeline, without Kubernetes.
//!
//! Exit codes: 0 Ready, 1 not Ready, 2 error (bad file, invalid spec, missing credential,
//! refused credential, hub unreachable). Messages never contain the credential.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use crate::api::EdgeDeviceWatch;
use crate::controller::prepare::credentials::HubCredentials;
use crate::controller::sweep::hub_clients::HubClientTemplate;
use crate::iothub::{Operation, RequestObserver, Secret};

use super::evaluate::OutputFormat;
use super::local_watch::{LocalWatch, is_ready};
use super::render;

/// Reconcile one EdgeDeviceWatch file against a hub, without Kubernetes.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The EdgeDeviceWatch YAML (as you would `kubectl apply` it).
    #[arg(short = 'f', long = "file", value_name = "WATCH.yaml")]
    pub file: PathBuf,
    /// Environment variable holding the hub's connection string (SAS policy with
    /// RegistryRead and ServiceConnect). Not used when the watch uses workloadIdentity.
    #[arg(long, value_name = "VAR", default_value = "IOTHUB_CONNECTION_STRING")]
    pub connection_string_env: String,
    /// Send requests here instead of https://<hub host name> (e.g. the simulator).
    #[arg(long, value_name = "URL")]
    pub hub_url: Option<String>,
    /// PEM file of a CA to trust in addition to the public roots (e.g. the simulator's).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Output format of the status.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Why `check` could not judge the watch (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an EdgeDeviceWatch: {problem}")]
    NotAWatch { path: String, problem: String },
    #[error("{path}: the spec is invalid: {problem}")]
    InvalidSpec { path: String, problem: String },
    #[error(
        "environment variable {0} is not set; put the hub's connection string in it or name another variable with --connection-string-env"
    )]
    MissingConnectionString(String),
    #[error(
        "IoT Hub {hub} did not answer: every request failed ({outcome}); check the host name, --hub-url, the network and --ca-file"
    )]
    HubUnreachable { hub: String, outcome: String },
    #[error("{0}")]
    Reconcile(#[from] crate::controller::error::ReconcileError),
    #[error("cannot print the status: {0}")]
    Render(String),
}

/// Runs `check` and maps the outcome to its exit code.
pub fn run(args: &CheckArgs) -> ExitCode {
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| CheckError::Render(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(check(args)));
    match outcome {
        Ok((text, ready)) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            ExitCode::from(if ready { 0 } else { 1 })
        }
        Err(error) => {
            eprintln!("edgewatch check: {error}");
            ExitCode::from(2)
        }
    }
}

/// Reconciles the watch once; returns the rendered status and whether it is Ready.
pub async fn check(args: &CheckArgs) -> Result<(String, bool), CheckError> {
    let watch = load_watch(&args.file)?;
    let credentials = credentials_for(&watch, |name| std::env::var(name).ok(), args)?;
    let progress = Progress::on_stderr();
    let template = HubClientTemplate {
        endpoint: args.hub_url.clone(),
        extra_ca_pem: args.ca_file.as_deref().map(read_ca).transpose()?,
        observer: Some(progress.clone() as Arc<dyn RequestObserver>),
    };
    let mut local =
        LocalWatch::new(watch, credentials, template).map_err(|e| CheckError::InvalidSpec {
            path: args.file.display().to_string(),
            problem: e.to_string(),
        })?;
    let now = Timestamp::now();
    let result = local.reconcile(now).await;
    progress.finish();
    result?;
    if let Some(outcome) = progress.never_answered() {
        let hub = args.hub_url.clone().unwrap_or_else(|| {
            local
                .watch()
                .status
                .as_ref()
                .and_then(|s| s.hub.clone())
                .unwrap_or_default()
        });
        return Err(CheckError::HubUnreachable { hub, outcome });
    }
    let ready = is_ready(local.watch().status.as_ref());
    Ok((render_status(&local, args.output, now)?, ready))
}

/// Reads and checks a watch file: YAML of kind EdgeDeviceWatch whose spec passes the
/// CRD's CEL rules (the API server would refuse it otherwise).
pub fn load_watch(path: &Path) -> Result<EdgeDeviceWatch, CheckError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
        path: shown.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| CheckError::NotAWatch {
            path: shown.clone(),
            problem: e.to_string(),
        })?;
    let kind = value.get("kind").and_then(|k| k.as_str());
    if kind != Some("EdgeDeviceWatch") {
        return Err(CheckError::NotAWatch {
            path: shown,
            problem: format!(
                "kind is {}, expected EdgeDeviceWatch",
                kind.map_or_else(|| "missing".to_owned(), |k| format!("{k:?}"))
            ),
        });
    }
    let watch: EdgeDeviceWatch =
        serde_json::from_value(value.clone()).map_err(|e| CheckError::NotAWatch {
            path: shown.clone(),
            problem: e.to_string(),
        })?;
    let known = serde_json::to_value(&watch.spec).unwrap_or_default();
    let unknown = unknown_fields(value.get("spec"), &known, "spec");
    if !unknown.is_empty() {
        // kubectl's default strict field validation refuses these too.
        return Err(CheckError::InvalidSpec {
            path: shown,
            problem: format!("unknown field(s) {}", unknown.join(", ")),
        });
    }
    if let Err(errors) = watch.validate_cel() {
        return Err(CheckError::InvalidSpec {
            path: shown,
            problem: format!("{errors:?}"),
        });
    }
    Ok(watch)
}

/// Paths of fields in `given` that the parsed (and re-serialised) object does not have.
fn unknown_fields(
    given: Option<&serde_json::Value>,
    known: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    let (Some(serde_json::Value::Object(given)), serde_json::Value::Object(known)) = (given, known)
    else {
        return Vec::new();
    };
    given
        .iter()
        .flat_map(|(key, value)| {
            let here = format!("{path}.{key}");
            match known.get(key) {
                None => vec![here],
                Some(inner) => unknown_fields(Some(value), inner, &here),
            }
        })
        .collect()
}

/// The credential `check` uses: workload identity when the watch asks for it, otherwise
/// the connection string from the named environment variable.
pub fn credentials_for(
    watch: &EdgeDeviceWatch,
    env: impl Fn(&str) -> Option<String>,
    args: &CheckArgs,
) -> Result<HubCredentials, CheckError> {
    let hub = &watch.spec.hub;
    if let (Some(identity), Some(host_name)) = (&hub.workload_identity, &hub.host_name) {
        return Ok(HubCredentials::WorkloadIdentity {
            host_name: host_name.clone(),
            client_id: identity.client_id.clone(),
        });
    }
    let var = &args.connection_string_env;
    env(var)
        .filter(|v| !v.trim().is_empty())
        .map(|v| HubCredentials::ConnectionString(Secret::new(v.trim().to_owned())))
        .ok_or_else(|| CheckError::MissingConnectionString(var.clone()))
}

fn read_ca(path: &Path) -> Result<Vec<u8>, CheckError> {
    let pem = std::fs::read(path).map_err(|source| CheckError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(CheckError::Read {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a PEM certificate file",
            ),
        });
    }
    Ok(pem)
}

fn render_status(
    local: &LocalWatch,
    format: OutputFormat,
    now: Timestamp,
) -> Result<String, CheckError> {
    let status = &local.watch().status;
    match format {
        OutputFormat::Table => Ok(format!(
            "{}\n{}",
            render::get_table(&[local.watch()], now),
            render::describe(local.watch(), local.reports(), now)
        )),
        OutputFormat::Json => serde_json::to_string_pretty(status)
            .map(|s| s + "\n")
            .map_err(|e| CheckError::Render(e.to_string())),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(status).map_err(|e| CheckError::Render(e.to_string()))
        }
    }
}

/// A spinner on stderr counting IoT Hub requests, drawn only when stderr is a terminal.
/// It also notices a hub that never answered: the sweep tolerates per-device failures,
/// but when not one request got an HTTP answer there is nothing to judge.
struct Progress {
    bar: ProgressBar,
    answered: AtomicU64,
    unanswered: Mutex<Option<String>>,
}

impl Progress {
    fn on_stderr() -> Arc<Self> {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {pos} IoT Hub requests {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Arc::new(Self {
            bar,
            answered: AtomicU64::new(0),
            unanswered: Mutex::new(None),
        })
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// The last failure when requests were made and none got an HTTP answer.
    fn never_answered(&self) -> Option<String> {
        if self.answered.load(Ordering::Relaxed) > 0 {
            return None;
        }
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Outcomes that mean no HTTP answer came back (DNS, TCP, TLS, timeout).
fn is_unanswered(outcome: &str) -> bool {
    matches!(outcome, "connection" | "timeout")
}

impl RequestObserver for Progress {
    fn request_finished(&self, _: &str, operation: Operation, outcome: &str, _: Duration) {
        if is_unanswered(outcome) {
            *self.unanswered.lock().unwrap_or_else(|e| e.into_inner()) = Some(match outcome {
                "timeout" => "no answer within the request timeout".to_owned(),
                _ => "DNS, TCP or TLS failure before an HTTP answer".to_owned(),
            });
        } else {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
        self.bar.inc(1);
        self.bar.set_message(format!("(last: {operation})"));
    }
    fn throttled(&self, _: &str, _: Operation) {
        self.bar.set_message("(throttled, backing off)");
    }
    fn retried(&self, _: &str, _: Operation) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CheckArgs {
        CheckArgs {
            file: "w.yaml".into(),
            connection_string_env: "EW_TEST_CS".into(),
            hub_url: None,
            ca_file: None,
            output: OutputFormat::Table,
        }
    }

    fn watch(yaml: &str) -> EdgeDeviceWatch {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.yaml");
        std::fs::write(&path, yaml).unwrap();
        load_watch(&path).unwrap()
    }

    const SAS_WATCH: &str = "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: w}\nspec:\n  hub: {connectionStringSecretRef: {name: s, key: k}}\n  devices: [gw]\n";

    #[test]
    fn the_connection_string_comes_from_the_named_variable() {
        let w = watch(SAS_WATCH);
        let found =
            credentials_for(&w, |n| (n == "EW_TEST_CS").then(|| " cs ".into()), &args()).unwrap();
        assert_eq!(
            found,
            HubCredentials::ConnectionString(Secret::new("cs".to_owned()))
        );
        let missing = credentials_for(&w, |_| None, &args()).unwrap_err();
        assert!(missing.to_string().contains("EW_TEST_CS"), "{missing}");
        let empty = credentials_for(&w, |_| Some("  ".into()), &args()).unwrap_err();
        assert!(matches!(empty, CheckError::MissingConnectionString(_)));
    }

    #[test]
    fn workload_identity_watches_need_no_connection_string() {
        let w = watch(
            "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: w}\nspec:\n  hub: {hostName: h.azure-devices.net, workloadIdentity: {clientId: abc}}\n  devices: [gw]\n",
        );
        let found = credentials_for(&w, |_| None, &args()).unwrap();
        assert_eq!(
            found,
            HubCredentials::WorkloadIdentity {
                host_name: "h.azure-devices.net".into(),
                client_id: Some("abc".into())
            }
        );
    }

    #[test]
    fn files_that_are_not_watches_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "kind: ConfigMap\nmetadata: {name: x}\n",
                "expected EdgeDeviceWatch",
            ),
            ("spec: [unclosed\n", "is not an EdgeDeviceWatch"),
            (
                "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: w}\nspec:\n  hub: {connectionStringSecretRef: {name: s, key: k}}\n  devices: [gw]\n  interval: 1s\n",
                "interval must be at least 10s",
            ),
            (
                "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: w}\nspec:\n  hub: {connectionStringSecretRef: {name: s, key: k}}\n  devices: [gw]\n  bogus: 1\n",
                "unknown field(s) spec.bogus",
            ),
        ];
        for (yaml, needle) in cases {
            let path = dir.path().join("w.yaml");
            std::fs::write(&path, yaml).unwrap();
            let error = load_watch(&path).unwrap_err().to_string();
            assert!(error.contains(needle), "{yaml}: {error}");
        }
        let error = load_watch(&dir.path().join("absent.yaml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read"), "{error}");
    }

    #[test]
    fn a_ca_file_must_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        assert!(
            read_ca(&path)
                .unwrap_err()
                .to_string()
                .contains("not a PEM")
        );
    }
}
