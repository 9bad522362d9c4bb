//! The accept loop under the HTTP surface ([`crate::api`]).
//!
//! `axum::serve` gives hyper no timer, which turns off hyper's header-read timeout, and takes
//! every connection it is offered: a few clients trickling headers, or opening sockets by the
//! thousand, would hold an instance's memory and its graceful shutdown for ever. This loop is
//! the same server with those bounds ([`crate::config::Limits`]): at most `max_connections` open
//! at once (the rest closed on accept and counted), a header-read timeout, and each connection's
//! peer address handed to the routes as axum's `ConnectInfo`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::state::AppState;

/// The open-file limit of the process: each widget connection holds a socket, and the soft
/// limit many systems start processes with (1,024) would turn reps away long before memory
/// or CPU run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub was: u64,
    /// The soft limit now (the hard limit when raising it worked).
    pub now: u64,
    /// The hard limit, which only a privileged process may raise.
    pub hard: u64,
}

/// Reading or raising the open-file limit failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot raise the open-file limit (RLIMIT_NOFILE): {0}")]
pub struct OpenFileLimitError(#[source] pub std::io::Error);

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit, which an unprivileged
/// process may do. The `rlimit` crate does the system calls, so the relay stays free of `unsafe`.
pub fn raise_open_file_limit() -> Result<OpenFileLimit, OpenFileLimitError> {
    let (was, hard) = rlimit::Resource::NOFILE.get().map_err(OpenFileLimitError)?;
    if was >= hard {
        return Ok(OpenFileLimit {
            was,
            now: was,
            hard,
        });
    }
    rlimit::Resource::NOFILE
        .set(hard, hard)
        .map_err(OpenFileLimitError)?;
    let (now, hard) = rlimit::Resource::NOFILE.get().map_err(OpenFileLimitError)?;
    Ok(OpenFileLimit { was, now, hard })
}

/// How long a stopping instance waits for requests in progress before it lets them go.
const DRAIN: Duration = Duration::from_secs(20);

/// Serves `state`'s routes on `listener` until `stop` completes, then finishes the requests in
/// progress (for at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = state.config.limits.clone();
    let router = crate::api::router(state.clone());
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, mostly: a moment's pause lets some close.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            state.metrics.connection_refused("max_connections");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(with_peer(router.clone(), peer));
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in progress after {} s of shutdown",
            DRAIN.as_secs()
        );
    }
    Ok(())
}

/// The routes, with the connection's peer address in each request's extensions (what
/// `into_make_service_with_connect_info` would put there).
fn with_peer(
    router: Router,
    peer: SocketAddr,
) -> impl tower::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
    })
}
