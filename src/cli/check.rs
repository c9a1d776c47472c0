//! `edgewatch check -f WATCH.yaml`: one reconcile of an `EdgeDeviceWatch` file against an
//! IoT Hub (or the simulator) from a laptop, cron job or CI pipeline, without Kubernetes.
//!
//! Exit codes: 0 Ready, 1 not Ready, 2 error (bad file, invalid spec, missing credential,
//! refused credential, hub unreachable, the hub's daily message quota used up). Messages
//! never contain the credential.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use crate::controller::error::reset_time;
use crate::controller::{
    FieldError, GivenConnectionString, HubClientTemplate, InvalidSpec, LocalWatch, ReconcileError,
    WatchSettings,
};
use crate::errors::chain;
use crate::iothub::{Operation, RequestObserver};

use super::render::{self, OutputFormat};

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
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an EdgeDeviceWatch: {problem}")]
    NotAWatch { path: String, problem: String },
    #[error("{path}: invalid spec:\n{spec}")]
    InvalidSpec { path: String, spec: InvalidSpec },
    #[error(
        "environment variable {0} is not set; put the hub's connection string in it or name another variable with --connection-string-env"
    )]
    MissingConnectionString(String),
    #[error(
        "IoT Hub {hub} did not answer: every request failed ({outcome}); check the host name, --hub-url, the network and --ca-file"
    )]
    HubUnreachable { hub: String, outcome: String },
    #[error(
        "IoT Hub {hub} has used up its daily message quota (403002 IotHubQuotaExceeded), so the watch could not be judged; the hub refuses twin reads, queries and direct methods until the quota resets at {} (00:00 UTC)",
        reset_time(.resets_at.as_ref())
    )]
    DailyQuotaExceeded {
        hub: String,
        resets_at: Option<Timestamp>,
    },
    #[error(transparent)]
    Reconcile(Box<ReconcileError>),
    #[error("cannot print the status: {0}")]
    Render(String),
}

/// What `check` found: the rendered status and whether the watch is Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub text: String,
    pub ready: bool,
}

/// Runs `check` and maps the outcome to its exit code.
pub fn run(args: &CheckArgs) -> ExitCode {
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| CheckError::Render(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| {
            rt.block_on(check(
                args,
                |name| std::env::var(name).ok(),
                Timestamp::now(),
            ))
        });
    match outcome {
        Ok(checked) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(checked.text.as_bytes());
            let _ = out.flush();
            ExitCode::from(u8::from(!checked.ready))
        }
        Err(error) => {
            eprintln!("edgewatch check: {}", chain(&error));
            ExitCode::from(2)
        }
    }
}

/// Reconciles the watch in `args.file` once at `now`, through the operator's pipeline,
/// with the connection string from the environment variable `env` names.
pub async fn check(
    args: &CheckArgs,
    env: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Result<Checked, CheckError> {
    let watch = load_watch(&args.file)?;
    let variable = &args.connection_string_env;
    let credentials =
        GivenConnectionString::new(format!("environment variable {variable}"), env(variable));
    let progress = Progress::on_stderr();
    let template = HubClientTemplate {
        endpoint: args.hub_url.clone(),
        extra_ca_pem: args.ca_file.as_deref().map(read_ca).transpose()?,
        observer: Some(progress.clone() as Arc<dyn RequestObserver>),
        ..HubClientTemplate::default()
    };
    let mut local = LocalWatch::new(watch, credentials, template);
    let result = local.reconcile(now).await;
    progress.finish();
    result.map_err(|error| match error {
        ReconcileError::ConnectionStringNotGiven(_) => {
            CheckError::MissingConnectionString(variable.clone())
        }
        ReconcileError::DailyQuotaExceeded { hub, resets_at, .. } => {
            CheckError::DailyQuotaExceeded { hub, resets_at }
        }
        error => CheckError::Reconcile(Box::new(error)),
    })?;
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
    let ready = local
        .watch()
        .status
        .as_ref()
        .is_some_and(EdgeDeviceWatchStatus::is_ready);
    Ok(Checked {
        text: render_status(&local, args.output, now)?,
        ready,
    })
}

/// Reads and checks a watch file: YAML of kind EdgeDeviceWatch whose spec the API server
/// would accept and the operator could use. Every problem is reported, each as
/// `spec.<field>: <message>`: unknown fields, the operator's own checks (which name the
/// accepted forms of a duration that did not parse) and the CRD's CEL rules.
pub(crate) fn load_watch(path: &Path) -> Result<EdgeDeviceWatch, CheckError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Read {
        path: shown.clone(),
        source,
    })?;
    let value: Value = serde_saphyr::from_str(&text).map_err(|e| CheckError::NotAWatch {
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
    let problems = spec_problems(&watch, value.get("spec"));
    if !problems.is_empty() {
        return Err(CheckError::InvalidSpec {
            path: shown,
            spec: InvalidSpec { problems },
        });
    }
    Ok(watch)
}

/// Everything wrong with the watch's spec, one problem per field: unknown fields
/// (kubectl's strict field validation refuses them), the operator's checks, then the
/// CEL rules for fields not already named.
fn spec_problems(watch: &EdgeDeviceWatch, given: Option<&Value>) -> Vec<FieldError> {
    let crd = serde_json::to_value(EdgeDeviceWatch::crd()).unwrap_or_default();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut problems: Vec<FieldError> = unknown_fields(given, schema, "spec")
        .into_iter()
        .map(|field| FieldError::new(field, "unknown field"))
        .collect();
    if let Err(invalid) = WatchSettings::from_spec(&watch.spec) {
        problems.extend(invalid.problems);
    }
    if let Err(errors) = watch.validate_cel() {
        for error in errors.iter() {
            if !problems.iter().any(|p| p.field == error.field_path) {
                problems.push(FieldError::new(&error.field_path, &error.message));
            }
        }
    }
    problems
}

/// Paths of fields in `given` that `schema` (the CRD's structural schema) does not have.
fn unknown_fields(given: Option<&Value>, schema: &Value, path: &str) -> Vec<String> {
    match given {
        Some(Value::Object(fields)) => {
            let Some(known) = schema.get("properties").and_then(Value::as_object) else {
                return Vec::new();
            };
            fields
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
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| {
                unknown_fields(Some(item), &schema["items"], &format!("{path}[{i}]"))
            })
            .collect(),
        _ => Vec::new(),
    }
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
    local: &LocalWatch<GivenConnectionString>,
    format: OutputFormat,
    now: Timestamp,
) -> Result<String, CheckError> {
    let table = |_: &Option<EdgeDeviceWatchStatus>| {
        format!(
            "{}\n{}",
            render::watch::get_table(&[local.watch()], now),
            render::watch::describe(local.watch(), |id| local.report(id), now)
        )
    };
    render::output(&local.watch().status, format, table).map_err(CheckError::Render)
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

    fn load(yaml: &str) -> Result<EdgeDeviceWatch, CheckError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.yaml");
        std::fs::write(&path, yaml).unwrap();
        load_watch(&path)
    }

    const HEAD: &str =
        "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: w}\nspec:\n";
    const SAS: &str = "  hub: {connectionStringSecretRef: {name: s, key: k}}\n";

    #[test]
    fn files_that_are_not_watches_are_refused_with_the_reason() {
        let cases = [
            (
                "kind: ConfigMap\nmetadata: {name: x}\n".to_owned(),
                "expected EdgeDeviceWatch",
            ),
            ("spec: [unclosed\n".to_owned(), "is not an EdgeDeviceWatch"),
            (
                format!("{HEAD}{SAS}  devices: [gw]\n  interval: 1s\n"),
                "spec.interval: must be at least 10s",
            ),
            (
                format!("{HEAD}{SAS}  devices: [gw]\n  bogus: 1\n"),
                "spec.bogus: unknown field",
            ),
            (
                format!("{HEAD}{SAS}  devices: [gw]\n  modules: [{{name: m, extra: 1}}]\n"),
                "spec.modules[0].extra: unknown field",
            ),
        ];
        for (yaml, needle) in cases {
            let error = chain(&load(&yaml).unwrap_err());
            assert!(error.contains(needle), "{yaml}: {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let error = chain(&load_watch(&dir.path().join("absent.yaml")).unwrap_err());
        assert!(error.starts_with("cannot read "), "{error}");
        assert!(error.contains("No such file"), "{error}");
    }

    #[test]
    fn invalid_specs_print_one_field_per_line() {
        let cases = [
            (
                format!("{HEAD}{SAS}  devices: [gw]\n  interval: abc\n"),
                vec![
                    "spec.interval: \"abc\" is not a duration (a unit has no number); use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M",
                ],
            ),
            (
                format!("{HEAD}{SAS}  devices: [gw]\n  interval: 1s\n"),
                vec!["spec.interval: must be at least 10s"],
            ),
            (
                format!("{HEAD}{SAS}  devices: []\n"),
                vec!["spec: name at least one device in devices or a selector query"],
            ),
            (
                format!("{HEAD}  hub: {{}}\n  devices: [\"bad id\"]\n  staleAfter: 15 minutes\n"),
                vec![
                    "spec.hub: set exactly one credential source: connectionStringSecretRef or workloadIdentity",
                    "spec.staleAfter: \"15 minutes\" is not a duration (unknown unit); use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M",
                    "spec.devices: device ids are 1-128 ASCII letters, digits or - . + % _ # * ? ! ( ) , : = @ $ '",
                ],
            ),
        ];
        for (yaml, lines) in cases {
            let error = load(&yaml).unwrap_err();
            let CheckError::InvalidSpec { spec, .. } = &error else {
                panic!("{yaml}: {error}");
            };
            let printed: Vec<String> = spec.problems.iter().map(ToString::to_string).collect();
            assert_eq!(printed, lines, "{yaml}");
            let text = chain(&error);
            assert!(!text.contains("ValidationError"), "{text}");
            assert!(text.ends_with(&lines.join("\n")), "{text}");
        }
    }

    #[test]
    fn the_same_text_stalls_the_operator() {
        let watch = load(&format!("{HEAD}{SAS}  devices: [gw]\n")).unwrap();
        let mut spec = watch.spec.clone();
        spec.interval = "abc".into();
        let operator = WatchSettings::from_spec(&spec).unwrap_err().to_string();
        assert_eq!(
            operator,
            "spec.interval: \"abc\" is not a duration (a unit has no number); use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M"
        );
    }

    #[test]
    fn a_ca_file_must_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        assert!(chain(&read_ca(&path).unwrap_err()).contains("not a PEM"));
    }
}
