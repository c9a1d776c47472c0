//! kubectl 1.35 from `target/tools/`, bound to one kubeconfig.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::tools;

/// kubectl with `--kubeconfig` set, and its discovery cache next to the kubeconfig (so a
/// stale cache of another cluster on a reused port is never consulted, and `$HOME` stays
/// untouched).
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: &Path) -> Self {
        let cache_dir = kubeconfig.with_extension("kubectl-cache");
        Self {
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir,
        }
    }

    /// The command with the kubeconfig and cache set; add arguments and run or spawn it
    /// (`tokio::process::Command::from(..)` for a test that waits on it asynchronously).
    pub fn command(&self) -> Command {
        let mut command = Command::new(tools::kubectl());
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir);
        command
    }

    /// Runs kubectl with `args` and returns what it did, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running kubectl: {e}"))
    }

    /// Runs kubectl with `input` on its stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running kubectl: {e}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("writing kubectl's stdin");
        child.wait_with_output().expect("kubectl's output")
    }

    /// Runs kubectl and returns its stdout, or its stderr as the error.
    pub fn try_ok(&self, args: &[&str]) -> Result<String, String> {
        into_result(args, self.run(args))
    }

    /// Runs kubectl and returns its stdout; panics with its stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        self.try_ok(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl apply --server-side -f -` of a manifest (YAML or JSON, several documents
    /// separated by `---`); returns kubectl's report, one line per object.
    pub fn apply(&self, manifest: &str) -> String {
        let args = ["apply", "--server-side", "-f", "-"];
        into_result(&args, self.run_with_input(&args, manifest)).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn into_result(args: &[&str], out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("kubectl prints UTF-8"))
    } else {
        Err(format!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
