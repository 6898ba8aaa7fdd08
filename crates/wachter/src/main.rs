//! `wachter`: the command line. A thin adapter: it parses flags and the config file, calls
//! the library crates, and prints. Nothing here knows how a probe or an order works.

mod cases;
mod cli;
mod config;
mod constituency;
mod demo;
mod notify;
mod scan;
mod serve;
mod summary;
mod triage;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    /// The command did its job.
    pub const OK: u8 = 0;
    /// Bad usage, configuration or input; nothing was scanned.
    pub const USAGE: u8 = 2;
    /// wachter itself failed while working (output not writable, lab address in use).
    pub const FAILURE: u8 = 3;
    /// Interrupted (Ctrl-C); the results written so far are complete records.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wachter: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("wachter: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WACHTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
