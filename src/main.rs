//! The `tripseal` binary: parse arguments, set up the log, resolve the
//! settings, run the command, and turn its outcome into the exit code.

mod cli;
mod commands;
mod logger;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapErrorKind;

use tripseal::error::{self, Error, Outcome};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ClapErrorKind::DisplayHelp
                | ClapErrorKind::DisplayVersion
                | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
                _ => ExitCode::from(error::ExitCode::InvalidArgument as u8),
            };
        }
    };
    logger::init(cli.log_level(), cli.is_daemon());
    ExitCode::from(exit_code(cli.settings().and_then(commands::run)))
}

/// The one place an outcome becomes an exit code.
fn exit_code(result: Result<Outcome, Error>) -> u8 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        // A reader that went away (`tripseal show | head`) is not an error.
        Err(Error::Write { source, .. }) if source.kind() == ErrorKind::BrokenPipe => 0,
        Err(e) => {
            match e.hint() {
                Some(hint) => log::error!("{e}; {hint}"),
                None => log::error!("{e}"),
            }
            e.exit_code() as u8
        }
    }
}
