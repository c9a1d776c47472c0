//! The `testcluster` process: started with a pipe on its stdin that only this process
//! holds, so it stops etcd and kube-apiserver when this process exits for any reason
//! (normal exit, panic, SIGKILL: the kernel closes the pipe and testcluster reads EOF).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::tools;

/// How long a start may take on a loaded two-core machine before the tests give up.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// What testcluster prints on stdout when the cluster is ready or was restarted.
#[derive(Debug, Clone, Deserialize)]
pub struct Announcement {
    pub event: String,
    pub server: String,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    #[serde(rename = "auditLog")]
    pub audit_log: PathBuf,
    /// `testcluster`, `etcd` and `kube-apiserver`.
    pub pids: BTreeMap<String, u32>,
    /// Milliseconds: `etcd`, `apiserver`, `total` (and `restart` after a restart).
    pub millis: BTreeMap<String, u64>,
}

/// A running testcluster and the two pipes that talk to it.
pub struct Supervisor {
    child: Child,
    stdin: Option<ChildStdin>,
    announcements: Receiver<Announcement>,
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts a cluster in `dir` (removed when it stops), with extra kube-apiserver flags,
    /// and waits until it is ready.
    pub fn start(dir: &Path, apiserver_args: &[&str]) -> Result<(Self, Announcement), String> {
        let mut child = Command::new(tools::testcluster())
            .arg("-dir")
            .arg(dir)
            .args(["-cleanup", "-until", "stdin"])
            .args(apiserver_args.iter().map(|a| format!("-apiserver-arg={a}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run testcluster: {e}"))?;
        let announcements = read_announcements(child.stdout.take().expect("piped stdout"));
        let (stderr, stderr_reader) = forward_stderr(child.stderr.take().expect("piped stderr"));
        let mut supervisor = Self {
            stdin: child.stdin.take(),
            child,
            announcements,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let ready = supervisor.next_announcement("ready")?;
        Ok((supervisor, ready))
    }

    /// Restarts kube-apiserver (same port, same etcd) and waits until it is ready again.
    pub fn restart_apiserver(&mut self) -> Result<Announcement, String> {
        let stdin = self.stdin.as_mut().ok_or("testcluster was stopped")?;
        writeln!(stdin, "restart-apiserver")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("testcluster does not take commands: {e}"))?;
        self.next_announcement("restarted")
    }

    fn next_announcement(&mut self, event: &str) -> Result<Announcement, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.announcements.recv_timeout(left) {
                Ok(announcement) if announcement.event == event => return Ok(announcement),
                Ok(_) => {} // another event (an earlier restart); keep waiting
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "testcluster did not report {event:?} within {START_TIMEOUT:?}{}",
                        self.stderr_text()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    // Its last words may still be in the pipe.
                    if let Some(reader) = self.stderr_reader.take() {
                        let _ = reader.join();
                    }
                    return Err(format!(
                        "testcluster exited ({}) before reporting {event:?}{}",
                        status.unwrap_or_else(|e| e.to_string()),
                        self.stderr_text()
                    ));
                }
            }
        }
    }

    fn stderr_text(&self) -> String {
        let lines = self.stderr.lock().expect("stderr lines");
        if lines.is_empty() {
            String::new()
        } else {
            format!(":\n{}", lines.join("\n"))
        }
    }

    /// Closes testcluster's stdin (it stops both servers and removes its directory) and
    /// waits for it to exit.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_announcements(stdout: impl std::io::Read + Send + 'static) -> Receiver<Announcement> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str(&line) {
                Ok(announcement) => {
                    if sender.send(announcement).is_err() {
                        return;
                    }
                }
                Err(e) => write_log(&format!("testcluster printed {line:?}, not JSON: {e}")),
            }
        }
    });
    receiver
}

/// Copies testcluster's stderr to this process's stderr (past the test harness's output
/// capture, so it lands in the CI log) and keeps it for error messages.
fn forward_stderr(
    stderr: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            write_log(&line);
            kept.lock().expect("stderr lines").push(line);
        }
    });
    (lines, reader)
}

/// Writes one line to the process's real stderr. `eprintln!` in a test is captured and
/// shown only on failure; the cluster's start and version belong in every log.
pub fn write_log(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
