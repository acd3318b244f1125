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

/// The signals received so far.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    /// The first: it decides the exit code.
    first: Option<Signal>,
    count: u32,
}

/// Whether a stop was asked for; cheap to clone and to wait on.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    received: watch::Receiver<Received>,
}

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handlers (from now on the signals no
    /// longer kill the process) and listens on the current runtime. The
    /// first signal asks for a stop; a second one, for it to be quick (a
    /// batch then stops draining).
    pub(crate) fn listen() -> std::io::Result<Shutdown> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (sender, received) = watch::channel(Received::default());
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    Some(()) = term.recv() => Signal::Terminate,
                    Some(()) = int.recv() => Signal::Interrupt,
                    else => return,
                };
                sender.send_modify(|received| {
                    received.count += 1;
                    received.first.get_or_insert(signal);
                });
                if sender.borrow().count == 1 {
                    tracing::warn!(signal = signal.name(), "received; stopping");
                } else {
                    tracing::warn!(signal = signal.name(), "received again; stopping now");
                }
            }
        });
        Ok(Shutdown { received })
    }

    /// A stop that never comes (signals could not be installed).
    pub(crate) fn never() -> Shutdown {
        let (_, received) = watch::channel(Received::default());
        Shutdown { received }
    }

    /// Resolves with the first signal once one has arrived (at once if one
    /// has).
    pub(crate) async fn requested(&self) -> Signal {
        let received = self.count_reaches(1).await;
        received.first.expect("a signal was counted")
    }

    /// Resolves once a second signal has arrived: stop without waiting.
    pub(crate) async fn insisted(&self) {
        self.count_reaches(2).await;
    }

    async fn count_reaches(&self, count: u32) -> Received {
        let mut received = self.received.clone();
        match received.wait_for(|r| r.count >= count).await {
            Ok(received) => *received,
            // The listener is gone (or never was): no signal will come.
            Err(_) => std::future::pending().await,
        }
    }
}
