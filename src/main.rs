//! `glasshouse`: one binary for the whole platform. This file only parses the command line and hands
//! over; the wiring of each mode lives in its own module.

mod cli;
mod config;
mod event_index;
mod kubeconfig;
mod logging;
mod metrics_api;
mod pidfile;
mod pki;
mod run;
mod store;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Version => {
            println!("glasshouse {} (Kubernetes API v1.32)", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        cli::Command::Up(args) => run::main(args, run::Mode::Up),
        cli::Command::Server(args) => run::main(args, run::Mode::Server),
        cli::Command::StopContainers { data_dir } => {
            let data_dir = data_dir.unwrap_or_else(config::default_data_dir);
            if let Some(pid) = pidfile::running(&data_dir) {
                eprintln!(
                    "error: glasshouse (pid {pid}) runs on {}: stop it first, or its agent restarts what this stops",
                    data_dir.display()
                );
                return std::process::ExitCode::FAILURE;
            }
            let stopped = control_plane::node::runtime::stop_all(&data_dir.join("run/pods"));
            println!("stopped {stopped} containers");
            std::process::ExitCode::SUCCESS
        }
        cli::Command::Shim { dir } => control_plane::node::shim::main(&dir),
    }
}
