//! The `rankfile` binary: parses the command line, runs the command, and turns
//! the outcome into an exit code (see `cli::EXIT_CODES`).

#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod cli;
mod commands;
mod demo;
mod duress;
mod error;
mod home;
mod keyfile;
mod names;
mod net;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let out = output::Output::new(args.json);
    match commands::run(args, &out) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
