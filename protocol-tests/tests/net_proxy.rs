//! The chaos proxy itself, against a local echo server (no broker): each
//! fault does what it says, so the net and reliability suites can trust it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// An echo server that also reports every chunk it receives.
async fn echo_server() -> (String, mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let _ = tx.send(buf[..n].to_vec());
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).await.unwrap();
    got
}

#[tokio::test]
async fn passes_bytes_through_and_delays_them() {
    let (up, _rx) = echo_server().await;
    let proxy = ChaosProxy::start(&up).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"hello").await, b"hello");
    proxy.set_faults(Faults {
        delay: Duration::from_millis(150),
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(roundtrip(&mut s, b"slow").await, b"slow");
    // Delayed on the way up and on the way down.
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(proxy.bytes(), (9, 9));
}

#[tokio::test]
async fn black_hole_swallows_both_ways_and_keeps_the_connection() {
    let (up, mut rx) = echo_server().await;
    let proxy = ChaosProxy::start(&up).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"a").await, b"a");
    assert_eq!(rx.recv().await.unwrap(), b"a");
    proxy.set_faults(Faults {
        black_hole: true,
        ..Faults::default()
    });
    s.write_all(b"lost").await.unwrap();
    let mut b = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await;
    assert!(r.is_err(), "nothing may come back: {r:?}");
    assert!(rx.try_recv().is_err(), "nothing may reach the server");
    // Lifted: the same connection works again.
    proxy.set_faults(Faults::default());
    assert_eq!(roundtrip(&mut s, b"back").await, b"back");
}

#[tokio::test]
async fn hold_and_release_delivers_after_the_client_closed() {
    let (up, mut rx) = echo_server().await;
    let proxy = ChaosProxy::start(&up).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
    assert_eq!(rx.recv().await.unwrap(), b"x");
    proxy.set_faults(Faults {
        hold: true,
        ..Faults::default()
    });
    s.write_all(b"held-bytes").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "held bytes must not arrive yet");
    // The client gives up.
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_recv().is_err());
    proxy.release();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"held-bytes");
}

#[tokio::test]
async fn cuts_connections_after_a_random_lifetime_and_on_demand() {
    let (up, _rx) = echo_server().await;
    let proxy = ChaosProxy::start(&up).await.unwrap();
    proxy.set_faults(Faults {
        cut_after: Some((200, 400)),
        ..Faults::default()
    });
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let t = Instant::now();
    assert_eq!(roundtrip(&mut s, b"1").await, b"1");
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the proxy closed the connection");
    let lived = t.elapsed();
    assert!(lived >= Duration::from_millis(190), "{lived:?}");
    assert_eq!(proxy.cuts(), 1);
    // On demand.
    proxy.set_faults(Faults::default());
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"2").await, b"2");
    proxy.cut_all();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(proxy.cuts(), 2);
    assert_eq!(proxy.accepted(), 2);
}
