//! `runner`: the thin shell. Arguments and env parsed by clap (a bad value
//! is named by its flag or variable), then [`runner::run`].

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use runner::Exit;
use runner::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            print!("{}", error.render());
            return Exit::Ok.into();
        }
        Err(error) => {
            // The flags of the subcommand typed, so that a bad value from
            // the environment is named by its variable.
            let mut command = Cli::command();
            command.build();
            let typed = std::env::args()
                .skip(1)
                .find_map(|arg| command.find_subcommand(&arg).cloned());
            let command = typed.unwrap_or(command);
            let message = shortlist_shared::cli::explain_clap_error(&error, &command);
            eprintln!("{}", message.trim_end());
            return Exit::Usage.into();
        }
    };
    // kube builds its TLS config from rustls' process-wide provider; with
    // more than one compiled in (a workspace build unifies features) there
    // is no default, so name the one reqwest uses too.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    runner::run(cli).into()
}
