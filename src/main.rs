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
    /// Serve a simulated IoT Hub with a fleet of IoT Edge devices.
    Sim(edgewatch::cli::sim::SimArgs),
}

fn main() -> ExitCode {
    let Some(command) = Cli::parse().command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    match command {
        Command::Sim(args) => edgewatch::cli::sim::run(args),
    }
}
