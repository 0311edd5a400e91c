//! Entry point: parse the command line, run the mode, map the outcome to an exit status
//! (0 fine, 2 an alert reached --fail-on, 1 any error) with one-line error messages.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use lingertop::{EXIT_ERROR, cli::Cli};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(mut cli) => {
            cli.sets = lingertop::cli::all_sets(&args);
            cli
        }
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            _ => {
                // One line that keeps clap's detail; say shows whatever the user pasted escaped.
                lingertop::stderr::line(format_args!(
                    "lingertop: {}",
                    lingertop::cli::one_line_error(&e, &args)
                ));
                return ExitCode::from(EXIT_ERROR);
            }
        },
    };
    match lingertop::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The one place every error is printed: say escapes the paths, filter and config
            // text quoted in it (a newline shown as \n keeps the message one line), and a
            // stderr that cannot be written leaves the exit status alone.
            lingertop::stderr::line(format_args!("lingertop: {e:#}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
