//! One shutdown signal fanned out to every listener (gRPC, HTTP, the separate `/metrics`): a
//! `watch` channel whose value turns `true` once, as mini-redis broadcasts its shutdown to
//! every handler. A listener that fails can [`Shutdown::trigger`] it too, so the others stop
//! rather than serve half a service.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// A cheap `Clone` handle on the one shutdown of a server.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// A shutdown that happens when `signal` completes (or [`Shutdown::trigger`] is called).
    /// Must be called inside a Tokio runtime: `signal` is awaited by a task of its own.
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Shutdown {
        let shutdown = Shutdown {
            tx: Arc::new(watch::channel(false).0),
        };
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            on_signal.trigger();
        });
        shutdown
    }

    /// Shuts down now.
    pub fn trigger(&self) {
        // `send_replace` stores the value even while nobody listens yet, so a listener that
        // subscribes later still sees it.
        self.tx.send_replace(true);
    }

    /// Resolves once the shutdown has happened (at once if it already has).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shutdown;

    #[tokio::test]
    async fn every_listener_stops_on_the_signal_or_a_trigger() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Shutdown::on(async move {
            let _ = rx.await;
        });
        let (a, b) = (shutdown.stopped(), shutdown.stopped());
        let _ = tx.send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(a, b)
        })
        .await
        .unwrap();

        let shutdown = Shutdown::on(std::future::pending());
        shutdown.trigger();
        // Subscribed after the trigger: still stops.
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.stopped())
            .await
            .unwrap();
    }
}
