//! The `tripseal` binary: parse arguments, run, map the outcome to an exit code.

mod cli;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapErrorKind;

use tripseal::error::{self, Error};

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
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`tripseal show | head`) is not an error.
        Err(Error::Write { source, .. }) if source.kind() == ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Messages quote what a baseline or a file held: nothing in them
            // reaches the terminal unescaped.
            let message = tripseal::escape::sanitize_line(&e.to_string());
            match e.hint() {
                Some(hint) => eprintln!("tripseal: error: {message}; {hint}"),
                None => eprintln!("tripseal: error: {message}"),
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
