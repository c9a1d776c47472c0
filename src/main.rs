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
    /// Print the EdgeDeviceWatch CRD as YAML.
    Crd(edgewatch::cli::crd::CrdArgs),
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
        Command::Crd(args) => edgewatch::cli::crd::run(&args),
        Command::Evaluate(args) => edgewatch::cli::evaluate::run(&args),
        Command::Run(args) => edgewatch::cli::run::run(&args),
        Command::Sim(args) => edgewatch::cli::sim::run(args),
    }
}
