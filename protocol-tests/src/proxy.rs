//! A chaos TCP proxy between a client and a broker, for connection-fault
//! tests (RELIABILITY.md): cut every connection after a random lifetime,
//! delay bytes, black-hole them, or hold client-to-broker bytes and release
//! them later, even after the client gave up (the KAFKA-17754 case).
//!
//! Runs on the caller's tokio runtime. Faults can change at any time and
//! apply to connections already open.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
//! let proxy = ChaosProxy::start("127.0.0.1:9092").await?;
//! proxy.set_faults(Faults { cut_after: Some((500, 1500)), ..Faults::default() });
//! // point the client at proxy.addr() ...
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::rng::Rng;

/// The faults applied to traffic through the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Cut each new connection after a random lifetime between these bounds,
    /// in milliseconds (e.g. `(500, 1500)`).
    pub cut_after: Option<(u64, u64)>,
    /// Delay every chunk of bytes by this long, both directions.
    pub delay: Duration,
    /// Swallow all bytes, both directions, keeping the connections open.
    pub black_hole: bool,
    /// Hold client-to-broker bytes until [`ChaosProxy::release`].
    pub hold: bool,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    cuts: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    late: AtomicU64,
}

/// A running proxy. Dropping it stops accepting and cuts every connection.
#[derive(Debug)]
pub struct ChaosProxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    /// Bumped to cut every open connection.
    cut_epoch: watch::Sender<u64>,
    /// Bumped to release held bytes.
    release_epoch: watch::Sender<u64>,
    counters: Arc<Counters>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut_epoch.send_modify(|e| *e += 1);
    }
}

impl ChaosProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub async fn start(upstream: &str) -> std::io::Result<ChaosProxy> {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0")?, upstream).await
    }

    /// Like [`ChaosProxy::start`], on a listener the caller bound earlier:
    /// reserve the proxy's port first, start a broker that advertises it
    /// (`advertised.listeners`), then start the proxy towards the broker, so
    /// that clients reach every broker through the proxy, not only the
    /// bootstrap one.
    pub async fn start_on(
        listener: std::net::TcpListener,
        upstream: &str,
    ) -> std::io::Result<ChaosProxy> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (faults, faults_rx) = watch::channel(Faults::default());
        let (cut_epoch, cut_rx) = watch::channel(0u64);
        let (release_epoch, release_rx) = watch::channel(0u64);
        let counters = Arc::new(Counters::default());
        let upstream = upstream.to_owned();
        let c = counters.clone();
        let accept_task = tokio::spawn(async move {
            let rng = Arc::new(Mutex::new(Rng::seeded()));
            while let Ok((client, _)) = listener.accept().await {
                c.accepted.fetch_add(1, Ordering::Relaxed);
                let conn = Conn {
                    upstream: upstream.clone(),
                    faults: faults_rx.clone(),
                    cut: cut_rx.clone(),
                    release: release_rx.clone(),
                    counters: c.clone(),
                };
                let lifetime = faults_rx.borrow().cut_after.map(|(lo, hi)| {
                    let span = hi.saturating_sub(lo) + 1;
                    let extra = rng.lock().map_or(0, |mut r| r.below(span));
                    Duration::from_millis(lo + extra)
                });
                tokio::spawn(conn.run(client, lifetime));
            }
        });
        Ok(ChaosProxy {
            addr,
            faults,
            cut_epoch,
            release_epoch,
            counters,
            accept_task,
        })
    }

    /// `host:port` to give the client.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replaces the faults (open connections see the change at once; a new
    /// `cut_after` applies to connections accepted from now on).
    pub fn set_faults(&self, faults: Faults) {
        let _ = self.faults.send(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Cuts every open connection now.
    pub fn cut_all(&self) {
        self.cut_epoch.send_modify(|e| *e += 1);
    }

    /// Releases the client-to-broker bytes held so far (the hold stays on
    /// for later bytes unless [`Faults::hold`] is cleared).
    pub fn release(&self) {
        self.release_epoch.send_modify(|e| *e += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    /// Connections cut by the proxy so far.
    pub fn cuts(&self) -> u64 {
        self.counters.cuts.load(Ordering::Relaxed)
    }

    /// Held client-to-broker chunks delivered after their client had closed
    /// the connection (requests the client gave up on, landing late).
    pub fn late_deliveries(&self) -> u64 {
        self.counters.late.load(Ordering::Relaxed)
    }

    /// Bytes forwarded client-to-broker and broker-to-client.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counters.bytes_up.load(Ordering::Relaxed),
            self.counters.bytes_down.load(Ordering::Relaxed),
        )
    }
}

struct Conn {
    upstream: String,
    faults: watch::Receiver<Faults>,
    cut: watch::Receiver<u64>,
    release: watch::Receiver<u64>,
    counters: Arc<Counters>,
}

impl Conn {
    async fn run(mut self, client: TcpStream, lifetime: Option<Duration>) {
        let Ok(server) = TcpStream::connect(&self.upstream).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        self.cut.mark_unchanged();
        let up = pump(
            cr,
            sw,
            self.faults.clone(),
            Some(self.release.clone()),
            self.counters.clone(),
            true,
        );
        let down = pump(
            sr,
            cw,
            self.faults.clone(),
            None,
            self.counters.clone(),
            false,
        );
        let cut_at = async {
            match lifetime {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut_at => { self.counters.cuts.fetch_add(1, Ordering::Relaxed); }
            _ = self.cut.changed() => { self.counters.cuts.fetch_add(1, Ordering::Relaxed); }
        }
        // Dropping the halves closes both sockets.
    }
}

/// Copies `from` to `to` under the faults in force. Client-to-broker bytes
/// may be held: they are buffered until a release, and delivered then even if
/// the client has already closed its side.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
    mut release: Option<watch::Receiver<u64>>,
    counters: Arc<Counters>,
    upward: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let mut eof = false;
    if let Some(r) = release.as_mut() {
        r.mark_unchanged();
    }
    loop {
        if eof {
            if held.is_empty() {
                let _ = to.shutdown().await;
                return;
            }
            // The client is gone but bytes are held: deliver them on release.
            match release.as_mut() {
                Some(r) => {
                    if r.changed().await.is_err() {
                        return;
                    }
                    if write(&mut to, &held, &counters, upward).await.is_err() {
                        return;
                    }
                    counters.late.fetch_add(1, Ordering::Relaxed);
                    held.clear();
                }
                None => return,
            }
            continue;
        }
        let released = async {
            match release.as_mut() {
                Some(r) => r.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = from.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => { eof = true; continue; }
                    Ok(n) => n,
                };
                let f = faults.borrow().clone();
                if f.black_hole {
                    continue;
                }
                if upward && f.hold {
                    held.extend_from_slice(&buf[..n]);
                    continue;
                }
                // Hold lifted without a release: held bytes go first.
                if !held.is_empty() {
                    if write(&mut to, &held, &counters, upward).await.is_err() {
                        return;
                    }
                    held.clear();
                }
                if !f.delay.is_zero() {
                    tokio::time::sleep(f.delay).await;
                }
                if write(&mut to, &buf[..n], &counters, upward).await.is_err() {
                    return;
                }
            }
            ok = released => {
                if ok && !held.is_empty() {
                    if write(&mut to, &held, &counters, upward).await.is_err() {
                        return;
                    }
                    held.clear();
                }
            }
        }
    }
}

async fn write(
    to: &mut OwnedWriteHalf,
    bytes: &[u8],
    counters: &Counters,
    upward: bool,
) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    let c = if upward {
        &counters.bytes_up
    } else {
        &counters.bytes_down
    };
    c.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}
