//! The `eligo` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use eligo::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Check {
            student,
            policies,
            as_of,
            rules,
            json,
        }) => cli::check(&student, &policies, as_of, &rules, json).map(|_| true),
        Some(Command::Test { dir }) => cli::test(&dir),
        Some(Command::GenStudents { count, seed }) => cli::gen_students(count, seed).map(|_| true),
        None => {
            eprintln!("eligo: no command given; see eligo --help");
            Ok(false)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("eligo: {e:#}");
            ExitCode::from(2)
        }
    }
}
