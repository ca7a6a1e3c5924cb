//! The HTTP server's accept loop, in place of `axum::serve`, which has no header-read timeout
//! and no bound on connections: a client that opens connections and sends half a request on
//! each would otherwise hold a socket and a task per connection for as long as it likes.
//!
//! Here every connection holds a permit of a semaphore of [`HttpLimits::max_connections`]; when
//! none is left the loop stops accepting (new connections wait in the kernel's backlog) until
//! one closes. hyper closes a connection whose request head has not fully arrived within
//! [`HttpLimits::header_read_timeout`], which also ends idle keep-alive connections; the request
//! timeout (reading the body and answering) is a middleware of the router (`api.rs`). On stop,
//! the loop stops accepting and asks each connection to finish the request in hand and close.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Limits of the HTTP server. [`HttpLimits::default`] is what `serve` uses (README, "Serving").
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// How long a client may take to send a request's head (line and headers), from the moment
    /// the server starts waiting for it; also how long an idle keep-alive connection stays.
    pub header_read_timeout: Duration,
    /// How long a request may take from its head to the end of the answer, body included.
    pub request_timeout: Duration,
    /// How many connections may be open at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// Serves `router` on `listener` until `stop` is set, then lets open connections finish their
/// request in hand and returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    // Within what a semaphore can count, and at least one.
    let max = limits.max_connections.clamp(1, 1 << 20);
    let permits = Arc::new(Semaphore::new(max));
    loop {
        // A permit first: when every one is taken, nothing more is accepted until one frees.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed
            },
            _ = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "Could not accept a connection");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let mut conn_stop = stop.clone();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Some(header_read_timeout));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let stopping = stopped(&mut conn_stop);
            tokio::pin!(stopping);
            let mut asked_to_stop = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            // Header timeouts, resets, malformed requests: the client's doing.
                            tracing::debug!(%remote, error = %e, "A connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut stopping, if !asked_to_stop => {
                        asked_to_stop = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    // Every permit back means every connection has closed.
    let _ = permits
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
}

/// Completes once `stop` is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
