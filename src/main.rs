//! The `kpcap` binary: parse flags, run, map the outcome to an exit code
//! (README, "Exit codes").

mod app;
mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match app::run(cli) {
        Ok(code) => code,
        Err(err) => match err.downcast_ref::<app::OutputError>() {
            // The reader went away (`kpcap ... | head`): nothing to say.
            Some(closed) if closed.closed_pipe() => 0,
            _ => {
                eprintln!("kpcap: error: {err:#}");
                2
            }
        },
    };
    std::process::exit(code);
}
