//! Word count with state, exactly once: lines in, `(word, count)` out,
//! counts kept in the session's changelog-backed state.
//!
//! State is per input partition, so a word's count must live in one
//! partition: the session first re-keys every word into the `words` topic
//! (keyed by the word, so each word lands in one partition of it), then
//! counts what it reads back from `words`. Both steps are the same session
//! (input topics `lines` and `words`), each in exactly-once transactions:
//! the repartitioning Kafka Streams does, by hand.
//!
//! ```sh
//! cargo xtask kafka up
//! cargo run -p exactly-eos --example word_count -- 127.0.0.1:9092 lines words counts wc wc-1
//! ```
//!
//! Write text to `lines`; read `counts` with `isolation.level=read_committed`.
//! Kill the process at any moment and start it again: no count is skipped
//! or repeated, and the counts resume from the changelog.

use std::time::Duration;

use exactly_consumer::ConsumerRecord;
use exactly_eos::{Context, Handler, HandlerError, Session, SessionError, StateConfig};
use exactly_producer::ProducerRecord;

struct WordCount {
    lines: String,
    words: String,
    counts: String,
}

impl Handler for WordCount {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        if ctx.partition().topic == self.lines {
            // Step 1: one record per word, keyed by the word.
            for r in records {
                let text = String::from_utf8_lossy(r.value().map(|v| &v[..]).unwrap_or_default());
                for word in text.split_whitespace() {
                    let word = word.to_lowercase();
                    ctx.send(ProducerRecord::new(&self.words).with_key(word.as_bytes()))
                        .await?;
                }
            }
            return Ok(());
        }
        // Step 2: count, in this partition's state.
        for r in records {
            let Some(word) = r.key() else { continue };
            let state = ctx.state().ok_or("the session keeps no state")?;
            let count = match state.get(word) {
                Some(c) => std::str::from_utf8(&c)?.parse::<u64>()? + 1,
                None => 1,
            };
            state.put(word.clone(), count.to_string());
            ctx.send(
                ProducerRecord::new(&self.counts)
                    .with_key(word)
                    .with_value(count.to_string().as_bytes()),
            )
            .await?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), SessionError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, lines, words, counts, group, instance] = &args[..] else {
        eprintln!("usage: word_count <bootstrap> <lines> <words> <counts> <group> <instance>");
        std::process::exit(2);
    };
    let mut b = Session::builder();
    b.bootstrap_servers(bootstrap)?
        .set("auto.offset.reset", "earliest")?;
    b.group_id(group.as_str())
        .transactional_id(instance.as_str())
        .group_instance_id(instance.as_str())
        .input_topics(&[lines, words])
        .max_transaction_time(Duration::from_millis(100))
        .state(StateConfig::new("word-counts"));
    let session = b.build().await?;
    let stop = session.shutdown_handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.shutdown();
    });
    let stats = session
        .run(WordCount {
            lines: lines.clone(),
            words: words.clone(),
            counts: counts.clone(),
        })
        .await?;
    println!("stopped: {stats:?}");
    Ok(())
}
