//! Unit tests of the connection task over in-memory streams.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A request frame: size, api key 18, version 0, correlation id
/// placeholder, then `payload`.
fn frame(payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32((8 + payload.len()) as i32);
    b.put_i16(18);
    b.put_i16(0);
    b.put_i32(0);
    b.put_slice(payload);
    b
}

/// Echoes each request's correlation id and payload back.
async fn echo(mut s: tokio::io::DuplexStream) {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    loop {
        while let Ok(Some(f)) = dec.decode(&mut buf) {
            let mut out = BytesMut::new();
            out.put_i32((f.len() - 4) as i32);
            out.put_slice(&f[4..]);
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn correlation_ids_wrap_past_i32_max() {
    let (client, server) = tokio::io::duplex(1024);
    tokio::spawn(echo(server));
    let pipe = Pipeline::spawn(
        client,
        "mem".into(),
        PipelineOptions {
            max_in_flight: 2,
            max_response_size: 1 << 20,
            first_correlation_id: i32::MAX - 2,
        },
        Arc::new(Metrics::default()),
    );
    let mut ids = Vec::new();
    for i in 0u8..5 {
        let payload = [i; 3];
        let r = pipe
            .request(frame(&payload), 18, 0, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(&r.frame[4..], &payload);
        assert_eq!(
            i32::from_be_bytes([r.frame[0], r.frame[1], r.frame[2], r.frame[3]]),
            r.correlation_id
        );
        ids.push(r.correlation_id);
    }
    assert_eq!(ids, vec![i32::MAX - 2, i32::MAX - 1, i32::MAX, 0, 1]);
}

#[tokio::test]
async fn oversized_response_is_a_protocol_violation() {
    let (client, mut server) = tokio::io::duplex(1024);
    let pipe = Pipeline::spawn(
        client,
        "mem".into(),
        PipelineOptions {
            max_in_flight: 2,
            max_response_size: 1024,
            first_correlation_id: 0,
        },
        Arc::new(Metrics::default()),
    );
    tokio::spawn(async move {
        let mut b = [0u8; 64];
        let _ = server.read(&mut b).await;
        // "HTTP" read as a size: 1,213,486,160 bytes.
        let _ = server.write_all(b"HTTP/1.1 400 Bad Request\r\n").await;
        let _ = server.read(&mut b).await;
    });
    let e = pipe
        .request(frame(b"x"), 18, 0, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            NetError::ConnectionLost {
                cause: Disconnect::ProtocolViolation(_),
                delivery: Delivery::MaybeDelivered,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn retire_answers_in_flight_then_refuses_new_requests() {
    let (client, mut server) = tokio::io::duplex(1024);
    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let f = loop {
            if let Ok(Some(f)) = dec.decode(&mut buf) {
                break f;
            }
            if server.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        };
        let _ = got_tx.send(());
        let _ = go_rx.await;
        let mut out = BytesMut::new();
        out.put_i32((f.len() - 4) as i32);
        out.put_slice(&f[4..]);
        let _ = server.write_all(&out).await;
        let mut rest = [0u8; 64];
        let _ = server.read(&mut rest).await;
    });
    let pipe = Pipeline::spawn(
        client,
        "mem".into(),
        PipelineOptions {
            max_in_flight: 4,
            max_response_size: 1024,
            first_correlation_id: 0,
        },
        Arc::new(Metrics::default()),
    );
    let p2 = pipe.clone();
    let first = tokio::spawn(async move {
        p2.request(frame(b"first"), 18, 0, Duration::from_secs(30))
            .await
    });
    got_rx.await.unwrap();
    pipe.retire();
    // Let the task see the retirement before the next request.
    while !pipe.tx.is_closed() {
        tokio::task::yield_now().await;
    }
    let e = pipe
        .request(frame(b"late"), 18, 0, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent);
    go_tx.send(()).unwrap();
    let r = first.await.unwrap().unwrap();
    assert_eq!(&r.frame[4..], b"first");
    while !pipe.is_closed() {
        tokio::task::yield_now().await;
    }
    assert_eq!(pipe.shared.metrics.snapshot().disconnects, 0);
}

#[tokio::test]
async fn request_on_a_closed_pipeline_is_not_sent() {
    let (client, server) = tokio::io::duplex(64);
    drop(server);
    let pipe = Pipeline::spawn(
        client,
        "mem".into(),
        PipelineOptions {
            max_in_flight: 1,
            max_response_size: 1024,
            first_correlation_id: 0,
        },
        Arc::new(Metrics::default()),
    );
    let e = pipe
        .request(frame(b"x"), 18, 0, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(e.is_retriable());
    assert!(matches!(e, NetError::ConnectionLost { .. }), "{e:?}");
    assert!(pipe.is_closed());
}
