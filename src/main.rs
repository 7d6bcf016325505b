//! The `kpcap` binary: parse flags, run, map the outcome to an exit code
//! (README, "Exit codes").

mod app;
mod cli;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => std::process::exit(flag_error(err)),
    };
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

/// Help and version go to stdout as clap writes them (exit 0); a flag
/// error is kpcap's one line, `kpcap: error: ...`, with clap's tip and
/// usage on the lines after it (exit 2).
fn flag_error(err: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            2
        } else {
            0
        };
    }
    let text = err.render().to_string();
    let text = text.trim_end();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("kpcap: error: {first}");
    if !rest.trim().is_empty() {
        eprintln!("{rest}");
    }
    2
}
