//! `ssekit`: a curl for server-sent events, and a toolkit for testing SSE
//! servers (feature `cli`).
//!
//! `ssekit URL` connects, prints events as they arrive, reconnects like the
//! library, and exits with a status scripts can assert on; `check`,
//! `record`, `serve` and `completions` are subcommands. Run `ssekit --help`.
//! Built on ssekit's public API only.

mod check;
mod cli;
mod client;
mod printer;
mod record;
mod serve;
mod time;
mod values;
mod watch;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::printer::Printer;

/// Parses the arguments; bad usage prints `ssekit: <why>` and the usage on
/// stderr and exits 2, --help and --version print on stdout and exit 0.
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        let text = e.render().to_string();
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            _ => {
                let text = text.strip_prefix("error: ").unwrap_or(&text);
                eprint!("ssekit: {text}");
                if !text.contains("Usage:") {
                    eprintln!("\n{}", Cli::command().render_usage());
                }
                ExitCode::from(2)
            }
        }
    })
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Some(Command::Completions { shell }) = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "ssekit", &mut io::stdout());
        return ExitCode::SUCCESS;
    }
    let colour = std::env::var_os("NO_COLOR").is_none();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ssekit: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        None => {
            let printer = Printer {
                json: cli.watch.json,
                colour: colour && io::stdout().is_terminal(),
                include: cli.watch.include,
                proxy: None,
            };
            rt.block_on(watch::run(cli.watch, printer))
        }
        Some(Command::Check(a)) => rt.block_on(check::run(a, colour && io::stdout().is_terminal())),
        Some(Command::Record(a)) => rt.block_on(record::run(a)),
        Some(Command::Serve(a)) => rt.block_on(serve::run(a)),
        Some(Command::Completions { .. }) => ExitCode::SUCCESS,
    }
}
