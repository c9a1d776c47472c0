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
}

fn main() -> ExitCode {
    let Some(command) = Cli::parse().command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let result = match command {
        Command::Crd(args) => edgewatch::cli::crd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
