//! Serves the clients' metrics in the Prometheus text format, without an
//! HTTP library: a consumer reads a topic read_committed while a tiny
//! listener answers every connection with the current text.
//!
//! ```text
//! cargo run -p exactly --features metrics --example prometheus_metrics -- 127.0.0.1:9092 orders 127.0.0.1:9464
//! curl -s 127.0.0.1:9464/metrics
//! ```
//!
//! The recorder is `metrics-exporter-prometheus` built without its HTTP
//! server (`default-features = false`): the example renders the text itself.

use std::time::Duration;

use exactly::consumer::{Consumer, Polled, TopicPartition};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9464".into());

    let handle = PrometheusBuilder::new().install_recorder()?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("serving metrics on http://{listen}/metrics");
    let served = handle.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let text = served.render();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    text.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(text.as_bytes()).await;
            });
        }
    });

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await?;
    consumer.assign(&[TopicPartition::new(&topic, 0)])?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => exactly::metrics::export_consumer("example", &consumer),
            polled = consumer.poll(Duration::from_millis(500)) => {
                if let Polled::Records(records) = polled? {
                    if !records.is_empty() {
                        eprintln!("{} records", records.len());
                    }
                }
            }
        }
    }
}
