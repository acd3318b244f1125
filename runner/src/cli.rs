//! The command line: `runner submit`, `runner render`, `runner serve`.
//! Every flag has an environment variable (a Deployment passes none).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shortlist_shared::duration::parse_duration;
use shortlist_shared::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about = "Launches one Kubernetes Job per listing (assessor + relay) and reads its verdict back",
    long_about = "Launches one Kubernetes Job per listing (assessor + relay) and reads its verdict back from the \
assessor's termination message.\n\nThe cluster is found the way kubectl finds it: KUBECONFIG (or ~/.kube/config), \
else the pod's service account. The Job is the project's own deploy/rendered/base.yaml, built in (--template for another).",
    after_help = "Examples:\n  runner submit listing.json --wait        judge one listing on the cluster, print the verdict\n  \
runner status ex-redland-flat            where that listing's newest Job stands\n  \
runner render listing.json               the objects submit would create (no cluster needed)\n  \
runner serve --listen 0.0.0.0:8080       the HTTP API (deploy/runner/)\n\n\
Exit codes: 0 done (the Job succeeded, with --wait); 2 usage or no cluster configured; 3 invalid or too large \
listing (or the assessor's exit 3); other codes below 20 and 128+n: the assessor's own, with --wait (4 the \
judge failed, 6 delivery not confirmed, 137 killed); 20 the Kubernetes API refused or is unreachable (after \
retries); 21 --wait ran out (the Job runs on); 22 the Job failed without an assessor exit code; 130 interrupted \
(before the ConfigMap exists it stops at once; after, the submission is finished or cleaned up first)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where the objects go (default: the template's namespace, `shortlist`).
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "RUNNER_NAMESPACE",
        value_name = "NAMESPACE"
    )]
    pub namespace: Option<String>,
    /// A rendered overlay to take the Job from (`kubectl kustomize DIR >
    /// FILE`), instead of the built-in deploy/rendered/base.yaml.
    #[arg(long, global = true, env = "RUNNER_TEMPLATE", value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Retries of a failed Kubernetes API call (429, 503, a refused
    /// connection), with exponential backoff and jitter.
    #[arg(long, global = true, env = "RUNNER_API_RETRIES", default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub api_retries: u32,
    /// Log format on stderr (default: plain on a terminal, else json).
    #[arg(long, global = true, env = "LOG_FORMAT", value_name = "json|plain")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a listing's ConfigMap and Job; print the Job's name.
    Submit(Submit),
    /// Print where a listing's newest Job stands, and its verdict.
    Status(StatusArgs),
    /// Print the objects `submit` would create, as YAML (no cluster).
    Render(Render),
    /// Serve the HTTP API (POST /v1/listings, GET /v1/listings/{id}).
    Serve(Serve),
}

#[derive(Debug, Args)]
pub struct Submit {
    /// The listing: a profile JSON file, or a .txt/.md listing.
    #[arg(value_name = "LISTING")]
    pub listing: PathBuf,
    /// Wait for the Job to finish and print its verdict; the exit code
    /// follows the assessor's. Bare `--wait` waits as long as the Job may
    /// run (its activeDeadlineSeconds, plus a minute).
    #[arg(long, env = "RUNNER_WAIT", value_name = "DURATION", num_args = 0..=1,
          require_equals = true, default_missing_value = "job", value_parser = parse_wait)]
    pub wait: Option<Wait>,
    /// What to print: text (the Job's name, then the verdict) or json.
    #[arg(long, short = 'o', env = "RUNNER_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The listing's id (`metadata.id`, or the hash `submit` printed).
    #[arg(value_name = "ID")]
    pub id: String,
    /// What to print: text or json (as `GET /v1/listings/{id}`).
    #[arg(long, short = 'o', env = "RUNNER_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct Render {
    /// The listing: a profile JSON file, or a .txt/.md listing.
    #[arg(value_name = "LISTING")]
    pub listing: PathBuf,
}

#[derive(Debug, Args)]
pub struct Serve {
    /// The address to listen on (port 0: any free one; the address is
    /// printed on stdout).
    #[arg(
        long,
        env = "RUNNER_LISTEN",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// After SIGTERM, how long requests in flight may still finish.
    #[arg(long, env = "RUNNER_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration,
          value_name = "DURATION")]
    pub drain_timeout: Duration,
}

/// How long `--wait` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As long as the Job may run.
    JobDeadline,
    For(Duration),
}

fn parse_wait(value: &str) -> Result<Wait, String> {
    if value == "job" {
        Ok(Wait::JobDeadline)
    } else {
        parse_duration(value).map(Wait::For)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_an_environment_variable() {
        let mut command = Cli::command();
        command.build();
        let mut missing = shortlist_shared::cli::flags_without_env(&command);
        for sub in command.get_subcommands() {
            missing.extend(shortlist_shared::cli::flags_without_env(sub));
        }
        assert!(missing.is_empty(), "flags without env: {missing:?}");
    }

    #[test]
    fn wait_is_bare_or_a_duration_with_a_unit() {
        let cli = Cli::try_parse_from(["runner", "submit", "l.json", "--wait"]).unwrap();
        let Command::Submit(submit) = cli.command else {
            panic!()
        };
        assert_eq!(submit.wait, Some(Wait::JobDeadline));
        let cli = Cli::try_parse_from(["runner", "submit", "l.json", "--wait=90s"]).unwrap();
        let Command::Submit(submit) = cli.command else {
            panic!()
        };
        assert_eq!(submit.wait, Some(Wait::For(Duration::from_secs(90))));
        assert!(Cli::try_parse_from(["runner", "submit", "l.json", "--wait=90"]).is_err());
    }
}
