// Small transactions against a real broker with the reference Java client
// (kafka-clients, the harness's jars): beginTransaction, K sends,
// commitTransaction, in a loop, as a plain application writes it. The twin
// of benches/examples/txn_loop.rs; `cargo xtask bench txn` compiles this
// file with javac and runs both in turn against one broker.
//
//   java -cp '<libs>/*:<classes>' TxnLoop --bootstrap 127.0.0.1:9092 \
//       --topic txn-bench --k 1 --seconds 10
//
// Prints one line: client=java k=.. txns=.. secs=.. tps=.. commit_p50_ms=..
// commit_p99_ms=.. . The first second (connections, producer id, JIT) is a
// warm-up and not counted. Every send's future is checked after the commit.

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TxnLoop {
    public static void main(String[] argv) throws Exception {
        String bootstrap = "127.0.0.1:9092";
        String topic = "txn-bench";
        int k = 1;
        double seconds = 10.0;
        double warmup = 1.0;
        int valueBytes = 100;
        String txnId = "txn-loop-java-" + ProcessHandle.current().pid();
        for (int i = 0; i < argv.length; i++) {
            String flag = argv[i];
            String val = i + 1 < argv.length ? argv[i + 1] : null;
            switch (flag) {
                case "--bootstrap": bootstrap = val; i++; break;
                case "--topic": topic = val; i++; break;
                case "--k": k = Integer.parseInt(val); i++; break;
                case "--seconds": seconds = Double.parseDouble(val); i++; break;
                case "--warmup": warmup = Double.parseDouble(val); i++; break;
                case "--value-bytes": valueBytes = Integer.parseInt(val); i++; break;
                case "--transactional-id": txnId = val; i++; break;
                default: throw new IllegalArgumentException("unknown flag " + flag);
            }
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        byte[] value = new byte[valueBytes];
        Arrays.fill(value, (byte) 0x5a);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            long start = System.nanoTime();
            long warmEnd = start + (long) (warmup * 1e9);
            long end = warmEnd + (long) (seconds * 1e9);
            long measuredFrom = -1;
            List<Long> commits = new ArrayList<>();
            List<Future<RecordMetadata>> pending = new ArrayList<>(k);
            long txns = 0;
            while (true) {
                long now = System.nanoTime();
                if (now >= end) break;
                if (now >= warmEnd && measuredFrom < 0) measuredFrom = now;
                producer.beginTransaction();
                for (int i = 0; i < k; i++) {
                    pending.add(producer.send(new ProducerRecord<>(topic, null, value)));
                }
                long t1 = System.nanoTime();
                producer.commitTransaction();
                long t2 = System.nanoTime();
                for (Future<RecordMetadata> f : pending) f.get();
                pending.clear();
                if (measuredFrom >= 0) {
                    commits.add(t2 - t1);
                    txns++;
                }
            }
            double secs = (System.nanoTime() - measuredFrom) / 1e9;
            commits.sort(null);
            System.out.printf(java.util.Locale.ROOT,
                "client=java k=%d txns=%d secs=%.3f tps=%.1f commit_p50_ms=%.2f commit_p99_ms=%.2f%n",
                k, txns, secs, txns / secs, pct(commits, 0.5), pct(commits, 0.99));
        }
    }

    static double pct(List<Long> sorted, double p) {
        if (sorted.isEmpty()) return Double.NaN;
        int i = (int) Math.round((sorted.size() - 1) * p);
        return sorted.get(i) / 1e6;
    }
}
