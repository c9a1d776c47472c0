//! `edgewatch demo`: the simulator with the built-in demo fleet, reconciled by the
//! operator's own sweep and status code, shown as `kubectl get edw` / `kubectl describe
//! edw` would show it. No cluster, no Azure subscription.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchSpec};
use crate::controller::{GivenConnectionString, HubClientTemplate, LocalWatch};
use crate::sim::{self, ClockMode, Scenario, SimConfig, SimHandle, TlsMode};

use super::render;

/// The demo fleet (also usable with `edgewatch sim --scenario`).
pub(crate) const DEMO_SCENARIO: &str = include_str!("../../examples/scenarios/demo-fleet.yaml");

/// The sites of the demo fleet; one watch each.
const SITES: [&str; 2] = ["plant-a", "plant-b"];

/// Simulated time between two sweeps (the shortest interval a watch may ask for).
const SWEEP_STEP: SignedDuration = SignedDuration::from_secs(10);

/// Run the demo: a simulated fleet on two sites, judged live.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Print one snapshot (taken at --at into the scenario) and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: how far into the scenario the snapshot is taken (`90s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_at)]
    pub at: SignedDuration,
    /// Simulated seconds per wall-clock second in the live view (1 = real time).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub speed: u32,
}

fn parse_at(text: &str) -> Result<SignedDuration, String> {
    let at = crate::api::parse_duration(text).map_err(|e| e.to_string())?;
    match SignedDuration::try_from(at) {
        Ok(at) if at <= SignedDuration::from_hours(24) => Ok(at),
        _ => Err("give a duration between 0s and 24h".into()),
    }
}

/// Runs the demo; exit 0 when it ends normally (Ctrl-C or `--once`), 1 on failure.
pub fn run(args: &DemoArgs) -> ExitCode {
    let outcome = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(demo(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgewatch demo: {}", crate::errors::chain(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let mut demo = Demo::start().await?;
    let result = if args.once {
        demo.once(args.at).await
    } else {
        demo.live(args.speed).await
    };
    demo.sim.shutdown().await;
    result
}

/// The simulator and one local watch per site.
pub(crate) struct Demo {
    sim: SimHandle,
    watches: Vec<LocalWatch<GivenConnectionString>>,
    started: Timestamp,
    /// Reconciles of the last sweep that failed.
    failures: Vec<String>,
}

impl Demo {
    /// Starts the simulator on a free loopback port with a manual clock.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let scenario = Scenario::from_yaml(DEMO_SCENARIO)
            .map_err(|e| anyhow!("the built-in demo scenario is invalid: {e}"))?;
        let scenario_ids: Vec<String> = scenario.devices.iter().map(|d| d.id.clone()).collect();
        let sim = sim::start(SimConfig {
            scenario,
            clock: ClockMode::manual_from_now(),
            tls: TlsMode::Plain,
            ..SimConfig::default()
        })
        .await
        .context("starting the simulator")?;
        let started = sim.clock().now();
        let template = HubClientTemplate {
            endpoint: Some(sim.base_url()),
            ..HubClientTemplate::default()
        };
        let credentials = GivenConnectionString::new(
            "the simulator's connection string",
            Some(sim.connection_string()),
        );
        let watches = SITES
            .iter()
            .map(|site| {
                let devices = site_devices(&scenario_ids, site);
                Ok(LocalWatch::new(
                    site_watch(site, &devices, started)?,
                    credentials.clone(),
                    template.clone(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            sim,
            watches,
            started,
            failures: Vec::new(),
        })
    }

    /// Sweeps every watch at the simulator's current time. A failed reconcile is kept
    /// for the frame (as the operator would keep the last status and retry).
    async fn sweep(&mut self) {
        let now = self.sim.clock().now();
        self.failures.clear();
        for watch in &mut self.watches {
            if let Err(error) = watch.reconcile(now).await {
                let name = kube::ResourceExt::name_any(watch.watch());
                self.failures.push(format!(
                    "reconciling {name} failed: {}",
                    crate::errors::chain(&error)
                ));
            }
        }
    }

    /// Sweeps once and fails when a watch could not be reconciled (no one is watching
    /// a `--once` run to notice a note in the frame).
    async fn sweep_strictly(&mut self) -> anyhow::Result<()> {
        self.sweep().await;
        match self.failures.first() {
            Some(failure) => Err(anyhow!("{failure}")),
            None => Ok(()),
        }
    }

    fn advance(&self, by: SignedDuration) -> anyhow::Result<()> {
        self.sim
            .clock()
            .advance(by)
            .map(|_| ())
            .map_err(|e| anyhow!("advancing the simulated clock: {e}"))
    }

    /// Lives through the scenario up to `at`, sweeping every step, and prints the view.
    pub(crate) async fn once(&mut self, at: SignedDuration) -> anyhow::Result<()> {
        let text = self.snapshot_at(at).await?;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// The view after living through the scenario up to `at`.
    pub(crate) async fn snapshot_at(&mut self, at: SignedDuration) -> anyhow::Result<String> {
        self.sweep_strictly().await?;
        while self.elapsed() + SWEEP_STEP <= at {
            self.advance(SWEEP_STEP)?;
            self.sweep_strictly().await?;
        }
        Ok(self.frame())
    }

    /// Sweeps every step of simulated time, `speed` times faster than the wall clock,
    /// redrawing until Ctrl-C.
    async fn live(&mut self, speed: u32) -> anyhow::Result<()> {
        let tty = std::io::stdout().is_terminal();
        let step_wall = Duration::from_secs_f64(SWEEP_STEP.as_secs_f64() / f64::from(speed));
        let mut ticker = tokio::time::interval(step_wall);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        // One Ctrl-C listener for the whole run: a fresh one per iteration would miss a
        // signal that arrives while a sweep is running.
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = self.sweep() => {}
                signal = &mut stop => return signal.context("waiting for Ctrl-C"),
            }
            self.draw(tty)?;
            tokio::select! {
                _ = ticker.tick() => self.advance(SWEEP_STEP)?,
                signal = &mut stop => return signal.context("waiting for Ctrl-C"),
            }
        }
    }

    fn draw(&self, tty: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if tty {
            // Home the cursor and clear the screen, then draw the whole frame.
            out.write_all(b"\x1b[H\x1b[2J")?;
            out.write_all(self.frame().as_bytes())?;
            out.write_all(b"\n(Ctrl-C to stop)\n")?;
        } else {
            out.write_all(self.frame().as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    fn elapsed(&self) -> SignedDuration {
        self.sim.clock().now().duration_since(self.started)
    }

    /// The whole view at the simulator's current time.
    pub(crate) fn frame(&self) -> String {
        let now = self.sim.clock().now();
        let mut text = format!(
            "edgewatch demo: simulated IoT Hub {}, t+{}s\n\n$ kubectl get edw -n demo -o wide\n",
            self.sim.hub_name(),
            self.elapsed().as_secs()
        );
        let watches: Vec<&EdgeDeviceWatch> = self.watches.iter().map(|w| w.watch()).collect();
        text.push_str(&render::watch::get_table(&watches, now));
        for failure in &self.failures {
            let _ = writeln!(text, "! {failure}");
        }
        for watch in &self.watches {
            let _ = writeln!(
                text,
                "\n$ kubectl describe edw -n demo {}",
                kube::ResourceExt::name_any(watch.watch())
            );
            text.push_str(&render::watch::describe(
                watch.watch(),
                |id| watch.report(id),
                now,
            ));
        }
        text
    }
}

/// The demo fleet's gateways of one site (their ids start with the site's name).
fn site_devices(ids: &[String], site: &str) -> Vec<String> {
    let prefix = format!("{site}-");
    ids.iter()
        .filter(|id| id.starts_with(&prefix))
        .cloned()
        .collect()
}

/// The watch of one demo site: its gateways listed by id, short cadences so the story
/// unfolds in a minute.
// The simulator does not serve `SELECT deviceId` projections yet, which the controller's
// selector query uses; explicit ids take the same sweep path from there on.
fn site_watch(
    site: &str,
    devices: &[String],
    created: Timestamp,
) -> anyhow::Result<EdgeDeviceWatch> {
    let yaml = format!(
        "hub: {{connectionStringSecretRef: {{name: demo-iothub, key: connectionString}}}}\n\
         devices: [{}]\n\
         modules: [{{name: SimulatedTemperatureSensor, compareProperties: [SendInterval]}}]\n\
         interval: 10s\n\
         ping: {{enabled: true, interval: 10s, timeoutSeconds: 5}}\n\
         staleAfter: 5m\n\
         deploymentGracePeriod: 30s\n\
         restartLoop: {{restarts: 3, window: 30m}}\n",
        devices.join(", ")
    );
    let spec: EdgeDeviceWatchSpec =
        serde_saphyr::from_str(&yaml).context("building the demo watch")?;
    let mut watch = EdgeDeviceWatch::new(site, spec);
    watch.metadata.namespace = Some("demo".into());
    watch.metadata.generation = Some(1);
    watch.metadata.creation_timestamp = Some(Time(created));
    Ok(watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenario_and_watches_are_valid() {
        let scenario = Scenario::from_yaml(DEMO_SCENARIO).unwrap();
        let ids: Vec<String> = scenario.devices.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids.len(), 12);
        for site in SITES {
            let devices = site_devices(&ids, site);
            assert_eq!(devices.len(), 6, "{site}");
            let watch = site_watch(site, &devices, Timestamp::UNIX_EPOCH).unwrap();
            crate::controller::WatchSettings::from_spec(&watch.spec).unwrap();
            watch.validate_cel().unwrap();
        }
    }

    #[test]
    fn snapshot_times_are_bounded() {
        assert_eq!(parse_at("2m").unwrap(), SignedDuration::from_mins(2));
        assert!(parse_at("25h").is_err());
        assert!(parse_at("soon").is_err());
    }
}
