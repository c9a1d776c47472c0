use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Watch Azure IoT Edge devices and report their health as Kubernetes conditions.
#[derive(Parser)]
#[command(name = "edgewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile one EdgeDeviceWatch file against a hub without Kubernetes (exit 0 Ready, 1 not Ready, 2 error).
    Check(edgewatch::cli::check::CheckArgs),
    /// Print the EdgeDeviceWatch CRD as YAML.
    Crd(edgewatch::cli::crd::CrdArgs),
    /// Show edgewatch judging a simulated fleet, as kubectl would show it.
    Demo(edgewatch::cli::demo::DemoArgs),
    /// Judge one device from twin files (exit 0 Ready, 1 not Ready, 2 bad input).
    Evaluate(edgewatch::cli::evaluate::EvaluateArgs),
    /// Run the operator (in cluster, or with KUBECONFIG).
    Run(edgewatch::cli::run::RunArgs),
    /// Serve a simulated IoT Hub with a fleet of IoT Edge devices.
    Sim(edgewatch::cli::sim::SimArgs),
}

fn main() -> ExitCode {
    let Some(command) = Cli::parse().command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    match command {
        Command::Check(args) => edgewatch::cli::check::run(&args),
        Command::Crd(args) => edgewatch::cli::crd::run(&args),
        Command::Demo(args) => edgewatch::cli::demo::run(&args),
        Command::Evaluate(args) => edgewatch::cli::evaluate::run(&args),
        Command::Run(args) => edgewatch::cli::run::run(&args),
        Command::Sim(args) => edgewatch::cli::sim::run(args),
    }
}
