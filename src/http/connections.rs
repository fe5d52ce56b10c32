//! Connections: sizer's own accept loop (instead of `axum::serve`) for what that one does not offer. A cap
//! on open connections; timers for slow clients (a request head must arrive within
//! `server.header_read_timeout_ms` of its first byte, an idle keep-alive connection closes after
//! `server.keep_alive_timeout_ms`, a response write that makes no progress for
//! `server.write_timeout_ms` closes the connection); and the drain: on the stop signal the listener closes at once (new
//! connections are refused), idle connections close, busy ones finish their request and then close, all
//! within the grace.
//!
//! Never looks inside a request: what happens to one is the router's and its layers'.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// How long the accept loop pauses after an error that is not one connection's (out of file
/// descriptors, say), so that it does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The per-connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    /// How long a write may make no progress before the connection is closed.
    pub write_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(config: &Config) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: config.server.max_connections,
            header_read_timeout: config.header_read_timeout(),
            keep_alive_timeout: config.keep_alive_timeout(),
            write_timeout: config.write_timeout(),
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// The stop signal plus the grace: what is left of the grace belongs to whatever drains next.
    pub deadline: Instant,
    /// Connections still open when the grace ran out (0: every one finished).
    pub still_open: usize,
}

/// Serves `router` on `listener` until `stop` resolves; then closes the listener, asks every connection to
/// finish (idle ones close at once, busy ones after their response) and waits for them up to `grace`.
/// `open` counts the connections open at any time.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    open: Arc<AtomicU64>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> Drained {
    let mut stop = std::pin::pin!(stop);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let (closing_tx, closing_rx) = watch::channel(false);
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's accept queue, not in memory.
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                // Never closed; were it, no connection could be served any more.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_one_connections_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "accept failed; pausing");
                    let paused = tokio::select! {
                        () = &mut stop => false,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => true,
                    };
                    if paused {
                        continue;
                    }
                    break;
                }
            },
        };
        let slot = Slot::take(permit, &open);
        connections.spawn(serve_connection(
            stream,
            router.clone(),
            limits,
            closing_rx.clone(),
            slot,
        ));
    }
    let deadline = Instant::now() + grace;
    // Closed now, not when the last connection ends: a new connection is refused, not left waiting.
    drop(listener);
    let _ = closing_tx.send(true);
    connections.close();
    let finished = tokio::time::timeout_at(deadline.into(), connections.wait())
        .await
        .is_ok();
    Drained {
        deadline,
        still_open: if finished { 0 } else { connections.len() },
    }
}

/// Errors about the connection being accepted, not the listener: the next accept is unaffected.
fn is_one_connections_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A connection's place: one of `max_connections` permits, and its count in the gauge, both given back
/// when the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Arc<AtomicU64>,
}

impl Slot {
    fn take(permit: OwnedSemaphorePermit, open: &Arc<AtomicU64>) -> Slot {
        open.fetch_add(1, Ordering::Relaxed);
        Slot {
            _permit: permit,
            open: Arc::clone(open),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
    _slot: Slot,
) {
    let clock = Arc::new(HeadClock::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        clock: Arc::clone(&clock),
        write_timeout: limits.write_timeout,
        stalled: None,
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(HeadTimer { clock, limits })
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(io, TowerToHyperService::new(router));
    let mut connection = std::pin::pin!(connection);
    let closing = async move {
        // The borrow `wait_for` returns is dropped here, not held across the rest of the connection.
        let _ = closing.wait_for(|&now| now).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = closing => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // Clients that go away, time out on their head or send garbage: theirs, not the service's.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// When a connection last started reading, for the head timer: times are nanoseconds after `origin`.
#[derive(Debug)]
struct HeadClock {
    origin: Instant,
    /// How often the head timer has been armed; 0 until the first request's head is awaited.
    arms: AtomicU64,
    /// 1 + nanoseconds after `origin` of the first byte read since the timer was last armed; 0: none yet.
    first_byte: AtomicU64,
}

impl HeadClock {
    fn new() -> HeadClock {
        HeadClock {
            origin: Instant::now(),
            arms: AtomicU64::new(0),
            first_byte: AtomicU64::new(0),
        }
    }

    fn first_byte(&self) -> Option<Instant> {
        match self.first_byte.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.origin + Duration::from_nanos(n - 1)),
        }
    }

    fn saw_bytes(&self) {
        if self.first_byte.load(Ordering::Relaxed) == 0 {
            let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            let _ = self.first_byte.compare_exchange(
                0,
                nanos.saturating_add(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// The socket, noting the first byte read after the head timer is armed, and failing a write that has
/// made no progress for `write_timeout` (a client that does not read its response).
struct Tracked {
    inner: TcpStream,
    clock: Arc<HeadClock>,
    write_timeout: Duration,
    /// Running while writes are pending without progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Tracked {
    /// `polled`, a write's outcome, with the stall timer kept: started by the first pending write,
    /// cleared by any progress, and an error once it runs out.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing of its response for server.write_timeout_ms",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.saw_bytes();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's only timer on an HTTP/1 server connection is the head timer, armed whenever the connection
/// waits for a request head: on opening, and after each response (so it is also the keep-alive timer).
/// hyper counts from the arming; this one counts the first head from the opening, and each later one from
/// its first byte, with `keep_alive_timeout` for the wait before that byte.
#[derive(Debug)]
struct HeadTimer {
    clock: Arc<HeadClock>,
    limits: ConnectionLimits,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let armed_at = Instant::now();
        let first_head = self.clock.arms.fetch_add(1, Ordering::Relaxed) == 0;
        self.clock.first_byte.store(0, Ordering::Release);
        let mut sleep = HeadSleep {
            clock: Arc::clone(&self.clock),
            limits: self.limits,
            armed_at,
            first_head,
            target: armed_at,
            sleep: Box::pin(tokio::time::sleep_until(armed_at.into())),
        };
        sleep.retarget();
        Box::pin(sleep)
    }
}

struct HeadSleep {
    clock: Arc<HeadClock>,
    limits: ConnectionLimits,
    armed_at: Instant,
    first_head: bool,
    target: Instant,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HeadSleep {
    /// hyper polls this whenever a read leaves the head incomplete, so a first byte moves the target.
    fn retarget(&mut self) {
        let target = match (self.first_head, self.clock.first_byte()) {
            (true, _) => self.armed_at + self.limits.header_read_timeout,
            (false, Some(first)) => first + self.limits.header_read_timeout,
            (false, None) => self.armed_at + self.limits.keep_alive_timeout,
        };
        if target != self.target {
            self.target = target;
            self.sleep.as_mut().reset(target.into());
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.retarget();
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}
