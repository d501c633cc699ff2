//! The appservice API's HTTP server. axum's own `serve` sets no timer and
//! no limit, so anyone who reaches the port could hold connections until
//! the doctor runs out of descriptors. Here:
//! - each connection gets hyper's header deadline (against slowloris);
//! - a connection with no authorised request yet (the middleware calls
//!   [`Admission::authorised`] once the hs_token matched) is closed after
//!   [`UNAUTHENTICATED_DEADLINE`];
//! - at most [`MAX_CONNECTIONS`] are open: a new one takes the place of the
//!   oldest unauthenticated one, so the homeserver's fresh connection always
//!   gets in, however many idle ones a flood holds;
//! - running out of descriptors on accept pauses the loop instead of spinning;
//! - shutdown lets requests in flight finish.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;

use crate::service::log_limit::LogLimit;

/// How long a client may take to send its request line and headers (also
/// how long an idle kept-alive connection stays open, as in hyper's default).
pub const HEADER_DEADLINE: Duration = Duration::from_secs(30);

/// How long a connection may stay open without an authorised request. The
/// homeserver sends its request as soon as it connects.
pub const UNAUTHENTICATED_DEADLINE: Duration = Duration::from_secs(5);

/// Connections open at once. Well under the usual 1,024 descriptors, which
/// the store, the crypto store and the calls to the homeserver share.
pub const MAX_CONNECTIONS: usize = 512;

/// The pause after accept failed for want of descriptors: they come back
/// only as connections close, and retrying at once would spin the CPU.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long requests in flight get to finish when the doctor stops.
const DRAIN: Duration = Duration::from_secs(10);

static ACCEPT_FAILED: LogLimit = LogLimit::new("failed accepts");
static CLOSED_FOR_ROOM: LogLimit = LogLimit::new("unauthenticated connections closed");

/// One open connection, as the server and its requests see it.
struct Slot {
    id: u64,
    authorised: AtomicBool,
    /// Told when the connection must close for a newer one.
    evicted: Notify,
}

/// In each request's extensions: lets the authentication middleware mark
/// the connection as the homeserver's.
#[derive(Clone)]
pub struct Admission(Arc<Slot>);

impl Admission {
    /// The connection sent a request with the right token: it is kept
    /// past [`UNAUTHENTICATED_DEADLINE`] and never closed for another.
    pub fn authorised(&self) {
        self.0.authorised.store(true, Ordering::Relaxed);
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Connections {
    open: Mutex<VecDeque<Arc<Slot>>>,
    next_id: AtomicU64,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Slot>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection; at the cap, the oldest unauthenticated
    /// connection is told to close. `None` when every open connection is
    /// authorised: the new one is then refused.
    fn admit(&self) -> Option<Arc<Slot>> {
        let mut open = self.lock();
        if open.len() >= MAX_CONNECTIONS {
            let oldest = open
                .iter()
                .position(|slot| !slot.authorised.load(Ordering::Relaxed))?;
            if let Some(slot) = open.remove(oldest) {
                slot.evicted.notify_one();
            }
            if CLOSED_FOR_ROOM.admit() {
                tracing::warn!(
                    "{MAX_CONNECTIONS} connections are open: the oldest one without an authorised request was closed to make room"
                );
            }
        }
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            authorised: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        open.push_back(Arc::clone(&slot));
        Some(slot)
    }

    fn release(&self, slot: &Slot) {
        self.lock().retain(|open| open.id != slot.id);
    }
}

/// Completes when the connection must close: told to make room, or
/// [`UNAUTHENTICATED_DEADLINE`] passed without an authorised request.
async fn closing(slot: &Slot) {
    let deadline = async {
        tokio::time::sleep(UNAUTHENTICATED_DEADLINE).await;
        if slot.authorised.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = slot.evicted.notified() => {},
        () = deadline => {},
    }
}

/// Whether accept failed because the process or the system has no
/// descriptor left (`EMFILE`, `ENFILE`).
fn out_of_descriptors(err: &std::io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        err.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE)
    )
}

/// After a failed accept: a pause when descriptors ran out, else nothing
/// (the client gave up before it was accepted).
async fn after_failed_accept(err: std::io::Error) {
    if !out_of_descriptors(&err) {
        tracing::debug!("accept failed: {err}");
        return;
    }
    if ACCEPT_FAILED.admit() {
        tracing::warn!(
            "no file descriptor left to accept a connection ({err}); retrying in {} ms. Raise the doctor's descriptor limit (LimitNOFILE= in systemd, --ulimit nofile= in Docker)",
            ACCEPT_BACKOFF.as_millis()
        );
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Serves one accepted connection until it ends or must close.
fn spawn_connection(
    stream: tokio::net::TcpStream,
    router: &axum::Router,
    connections: &Arc<Connections>,
    graceful: &GracefulShutdown,
) {
    let Some(slot) = connections.admit() else {
        // Every open connection is authorised: refused by closing it.
        return;
    };
    let admission = Admission(Arc::clone(&slot));
    let inner = TowerToHyperService::new(router.clone());
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(admission.clone());
            hyper::service::Service::call(&inner, request)
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    let connections = Arc::clone(connections);
    tokio::spawn(async move {
        tokio::select! {
            served = connection => if let Err(err) = served {
                tracing::debug!("connection closed: {err}");
            },
            () = closing(&slot) => {},
        }
        connections.release(&slot);
    });
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Connections::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => spawn_connection(stream, &router, &connections, &graceful),
                Err(err) => after_failed_accept(err).await,
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN:?} were cut off");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_oldest_unauthenticated_connection_makes_room() {
        let connections = Connections::default();
        let first = connections.admit().unwrap();
        first.authorised.store(true, Ordering::Relaxed);
        let second = connections.admit().unwrap();
        let rest: Vec<_> = (2..MAX_CONNECTIONS)
            .map(|_| connections.admit().unwrap())
            .collect();
        let newcomer = connections.admit().unwrap();
        // The authorised first one stays; the second is told to close.
        let ids: Vec<u64> = connections.lock().iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), MAX_CONNECTIONS);
        assert!(ids.contains(&first.id) && ids.contains(&newcomer.id));
        assert!(!ids.contains(&second.id));
        tokio::time::timeout(Duration::from_secs(1), second.evicted.notified())
            .await
            .expect("the evicted connection is told");
        // All authorised: a newcomer is refused.
        for slot in connections.lock().iter() {
            slot.authorised.store(true, Ordering::Relaxed);
        }
        assert!(connections.admit().is_none());
        connections.release(&rest[0]);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn emfile_and_enfile_are_out_of_descriptors() {
        use nix::errno::Errno;
        let io = |errno: Errno| std::io::Error::from_raw_os_error(errno as i32);
        assert!(out_of_descriptors(&io(Errno::EMFILE)));
        assert!(out_of_descriptors(&io(Errno::ENFILE)));
        assert!(!out_of_descriptors(&io(Errno::ECONNABORTED)));
    }
}
