//! What each subcommand does, from parsed arguments to an [`Exit`]. Errors
//! are printed here, once, on stderr; stdout carries only results (the
//! Job's name, the verdict, the YAML, the listen address).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cli::{Cli, Command, Global, Output, Render, Serve, StatusArgs, Submit, Wait};
use crate::cluster::{Cluster, ClusterError};
use crate::exit::Exit;
use crate::listing::Listing;
use crate::objects::Objects;
use crate::serve::{App, serve};
use crate::status::{self, State};
use crate::submit::{SubmitError, submission_token, submit_unless};
use crate::template::Template;
use crate::wait::{WaitError, until_finished};

/// How long bare `--wait` waits when the template sets no deadline.
const DEFAULT_WAIT: Duration = Duration::from_secs(30 * 60);

/// Runs the command line.
pub fn run(cli: Cli) -> Exit {
    shortlist_shared::logging::init(cli.global.log_format, "info");
    let template = match &cli.global.template {
        Some(path) => Template::read(path),
        None => Template::embedded(),
    };
    let template = match template {
        Ok(template) => template,
        Err(error) => {
            eprintln!("runner: {error}");
            return Exit::Usage;
        }
    };
    let namespace = cli
        .global
        .namespace
        .clone()
        .unwrap_or_else(|| template.namespace.clone());
    match cli.command {
        Command::Render(args) => render(&template, &namespace, &args),
        Command::Submit(args) => block_on(submit_command(&cli.global, template, namespace, args)),
        Command::Status(args) => block_on(status_command(&cli.global, template, namespace, args)),
        Command::Serve(args) => block_on(serve_command(&cli.global, template, namespace, args)),
    }
}

fn block_on(work: impl std::future::Future<Output = Exit>) -> Exit {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => {
            eprintln!("runner: cannot start the async runtime: {error}");
            Exit::Usage
        }
    }
}

fn read_listing(path: &std::path::Path) -> Result<Listing, Exit> {
    Listing::read(path).map_err(|error| {
        eprintln!("runner: {error}");
        Exit::InvalidListing
    })
}

fn render(template: &Template, namespace: &str, args: &Render) -> Exit {
    let listing = match read_listing(&args.listing) {
        Ok(listing) => listing,
        Err(exit) => return exit,
    };
    match Objects::build(template, &listing, namespace, &submission_token(&listing)) {
        Ok(objects) => {
            print!("{}", objects.to_yaml());
            Exit::Ok
        }
        Err(error) => {
            eprintln!("runner: {error}");
            Exit::InvalidListing
        }
    }
}

async fn connect(global: &Global) -> Result<Cluster, Exit> {
    Cluster::connect(global.api_retries).await.map_err(|error| {
        eprintln!("runner: {error}");
        match error {
            ClusterError::NotConfigured(_) => Exit::Usage,
            _ => Exit::Cluster,
        }
    })
}

/// SIGINT / SIGTERM, remembered rather than obeyed at once: a submission
/// is finished (or cleaned up) before the runner stops.
struct Signals {
    seen: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Signals {
    /// Installs the handlers; a failure is printed here.
    fn install() -> Result<Signals, Exit> {
        Signals::try_install().map_err(|error| {
            eprintln!("runner: cannot install signal handlers: {error}");
            Exit::Usage
        })
    }

    fn try_install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let seen = Arc::new(AtomicBool::new(false));
        let notify = Arc::new(tokio::sync::Notify::new());
        let (s, n) = (seen.clone(), notify.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            s.store(true, Ordering::SeqCst);
            n.notify_waiters();
            n.notify_one();
        });
        Ok(Signals { seen, notify })
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        if !self.seen() {
            self.notify.notified().await;
        }
    }
}

async fn submit_command(
    global: &Global,
    template: Template,
    namespace: String,
    args: Submit,
) -> Exit {
    let listing = match read_listing(&args.listing) {
        Ok(listing) => listing,
        Err(exit) => return exit,
    };
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(exit) => return exit,
    };
    let cluster = match connect(global).await {
        Ok(cluster) => cluster,
        Err(exit) => return exit,
    };
    let submitted =
        match submit_unless(&cluster, &template, &listing, &namespace, signals.wait()).await {
            Ok(submitted) => submitted,
            Err(error @ SubmitError::Interrupted) => {
                eprintln!("runner: {error}");
                return Exit::Interrupted;
            }
            Err(error @ SubmitError::TooLarge(_)) => {
                eprintln!("runner: {error}");
                return Exit::InvalidListing;
            }
            Err(error) => {
                eprintln!("runner: {error}");
                return Exit::Cluster;
            }
        };
    if args.output == Output::Text {
        println!("{}", submitted.job);
        let _ = std::io::stdout().flush();
    }
    let Some(wait) = args.wait else {
        if args.output == Output::Json {
            println!("{}", serde_json::to_string(&submitted).unwrap_or_default());
        }
        return Exit::Ok;
    };
    if signals.seen() {
        eprintln!(
            "runner: interrupted; Job {} was created and runs on",
            submitted.job
        );
        return Exit::Interrupted;
    }
    let timeout = match wait {
        Wait::For(duration) => duration,
        Wait::JobDeadline => template
            .active_deadline()
            .map(|d| d + Duration::from_secs(60))
            .unwrap_or(DEFAULT_WAIT),
    };
    let job = tokio::select! {
        outcome = until_finished(&cluster, &namespace, &submitted.job, timeout) => outcome,
        () = signals.wait() => {
            eprintln!("runner: interrupted while waiting; Job {} runs on", submitted.job);
            return Exit::Interrupted;
        }
    };
    let job = match job {
        Ok(job) => job,
        Err(error) => {
            eprintln!("runner: {error}");
            if matches!(error, WaitError::TimedOut { .. }) {
                eprintln!("runner: look again with `runner status {}`", submitted.id);
            }
            return match error {
                WaitError::TimedOut { .. } => Exit::WaitTimedOut,
                WaitError::Deleted { .. } | WaitError::NotFound { .. } => Exit::JobFailed,
            };
        }
    };
    let pods = match cluster.pods_of(&namespace, &submitted.job).await {
        Ok(pods) => pods,
        Err(error) => {
            eprintln!("runner: the Job finished, but {error}");
            return Exit::Cluster;
        }
    };
    let outcome = status::read(&job, &pods, &template.assessor_container);
    match args.output {
        Output::Text => print!("{}", outcome.to_text()),
        Output::Json => println!("{}", serde_json::to_string(&outcome).unwrap_or_default()),
    }
    exit_of(&outcome)
}

/// Exits like `submit --wait` would have for a finished Job; 0 while it
/// is pending or running; 22 when there is no such listing.
async fn status_command(
    global: &Global,
    template: Template,
    namespace: String,
    args: StatusArgs,
) -> Exit {
    let cluster = match connect(global).await {
        Ok(cluster) => cluster,
        Err(exit) => return exit,
    };
    let found =
        status::of_listing(&cluster, &namespace, &args.id, &template.assessor_container).await;
    let outcome = match found {
        Ok(Some(outcome)) => outcome,
        Ok(None) => {
            eprintln!(
                "runner: no Job for listing {:?} in namespace {namespace} (never submitted, or removed a day after it finished)",
                args.id
            );
            return Exit::JobFailed;
        }
        Err(error) => {
            eprintln!("runner: {error}");
            return Exit::Cluster;
        }
    };
    match args.output {
        Output::Text => print!("{}", outcome.to_text()),
        Output::Json => println!("{}", serde_json::to_string(&outcome).unwrap_or_default()),
    }
    exit_of(&outcome)
}

/// The exit code a finished listing's status stands for.
fn exit_of(outcome: &status::ListingStatus) -> Exit {
    match (outcome.state, outcome.exit_code) {
        (State::Succeeded | State::Pending | State::Running, _) => Exit::Ok,
        (State::Failed, Some(code)) if code != 0 => Exit::from_assessor(code),
        (State::Failed, _) => Exit::JobFailed,
    }
}

async fn serve_command(
    global: &Global,
    template: Template,
    namespace: String,
    args: Serve,
) -> Exit {
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(exit) => return exit,
    };
    let cluster = match connect(global).await {
        Ok(cluster) => cluster,
        Err(exit) => return exit,
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("runner: cannot listen on {}: {error}", args.listen);
            return Exit::Usage;
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    tracing::info!(address, namespace, cluster = cluster.url(), template = %template.source_name, "serving");
    let app = App {
        cluster,
        template: Arc::new(template),
        namespace,
    };
    let shutdown = async move { signals.wait().await };
    match serve(app, listener, shutdown, args.drain_timeout).await {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("runner: the server failed: {error}");
            Exit::Cluster
        }
    }
}
