//! SIGTERM (the kubelet stopping the pod) and SIGINT (Ctrl-C), turned into
//! one value every part of a run can wait for. What a stop means is the
//! mode's business: a single assessment is dropped at once (nothing is
//! written, its children are ended); a batch takes no new profiles and lets
//! the ones in flight finish for up to `ASSESSOR_DRAIN_TIMEOUT`. The exit
//! code names the signal (130 / 143, see [`crate::exit`]).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The signal that asked the assessor to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: the kubelet (or `kill`).
    Terminate,
}

impl Signal {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Whether a stop was asked for; cheap to clone and to wait on.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    requested: watch::Receiver<Option<Signal>>,
}

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handlers (from now on the signals no
    /// longer kill the process) and listens on the current runtime. Only the
    /// first signal counts; later ones are logged.
    pub(crate) fn listen() -> std::io::Result<Shutdown> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (sender, requested) = watch::channel(None);
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    Some(()) = term.recv() => Signal::Terminate,
                    Some(()) = int.recv() => Signal::Interrupt,
                    else => return,
                };
                if sender.borrow().is_some() {
                    tracing::warn!(signal = signal.name(), "received again; already stopping");
                    continue;
                }
                tracing::warn!(signal = signal.name(), "received; stopping");
                let _ = sender.send(Some(signal));
            }
        });
        Ok(Shutdown { requested })
    }

    /// A stop that never comes (signals could not be installed).
    pub(crate) fn never() -> Shutdown {
        let (_, requested) = watch::channel(None);
        Shutdown { requested }
    }

    /// Resolves with the signal once one has arrived (at once if one has).
    pub(crate) async fn requested(&self) -> Signal {
        let mut requested = self.requested.clone();
        match requested.wait_for(Option::is_some).await {
            Ok(signal) => (*signal).expect("waited for Some"),
            // The listener is gone (or never was): no signal will come.
            Err(_) => std::future::pending().await,
        }
    }
}
