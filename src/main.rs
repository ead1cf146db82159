//! The `eligo` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use eligo::cli::{self, Cli, Command};
use eligo::config::Settings;

/// mimalloc: a decision makes a few dozen small allocations, and the service many more per
/// request; it measured ~8 % faster per decision than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // `cargo run` with no arguments serves with the defaults (and ELIGO_* variables).
        None => match Cli::try_parse_from(["eligo", "serve"]) {
            Ok(Cli {
                command: Some(Command::Serve(s)),
            }) => run_server(*s),
            _ => Err(anyhow::anyhow!("cannot read the serve settings")),
        },
        Some(Command::Serve(settings)) => run_server(*settings),
        Some(Command::Migrate { database_url }) => cli::migrate(&database_url).map(|_| true),
        Some(Command::Keys(cmd)) => cli::keys(cmd),
        Some(Command::Openapi) => eligo::api::openapi::document()
            .map(|doc| {
                print!("{doc}");
                true
            })
            .map_err(anyhow::Error::from),
        Some(Command::Check {
            student,
            students,
            csv,
            policies,
            as_of,
            rules,
            json,
        }) => match (student, students) {
            (Some(student), _) => {
                cli::check(&student, &policies, as_of, &rules, json).map(|_| true)
            }
            (None, Some(students)) => cli::check_cohort(&students, &policies, as_of, &rules, csv),
            (None, None) => Err(anyhow::anyhow!("give --student FILE or --students FILE")),
        },
        Some(Command::Test { dir }) => cli::test(&dir),
        Some(Command::Simulate(args)) => cli::simulate(args),
        Some(Command::Policies(cli::PoliciesCommand::Export { dir, database_url })) => {
            cli::export_policies(&dir, &database_url)
        }
        Some(Command::GenStudents { count, seed }) => cli::gen_students(count, seed).map(|_| true),
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

fn run_server(settings: Settings) -> anyhow::Result<bool> {
    cli::init_tracing(settings.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::serve(settings))?;
    Ok(true)
}
