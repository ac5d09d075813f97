// Writes the golden record batches with the reference Java client.
// Run: java -cp '/tmp/kafkalibs/*' GoldenProducer.java <bootstrap>
// (single-file source launch; see README.md in this directory).
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class GoldenProducer {
    static final long T0 = 1_700_000_000_000L;

    static byte[] b(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static Properties props(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("enable.idempotence", "true");
        p.put("acks", "all");
        p.put("linger.ms", "200");
        p.put("batch.size", "1048576");
        return p;
    }

    // Record i of the plain topics: null key at 3, null value at 5, headers
    // ("h1" = "x<i>", "h2" = null) on every 4th record.
    static ProducerRecord<byte[], byte[]> plain(String topic, int i) {
        String key = i == 3 ? null : String.format("key-%02d", i);
        String value = i == 5 ? null : String.format("value-%02d-", i) + "abcdefgh".repeat(8);
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, 0, T0 + i, b(key), b(value));
        if (i % 4 == 0) {
            r.headers().add("h1", b("x" + i));
            r.headers().add("h2", null);
        }
        return r;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
            Properties p = props(bootstrap);
            p.put("compression.type", codec);
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 20; i++) {
                    producer.send(plain("golden-" + codec, i));
                }
                producer.flush();
            }
        }
        Properties p = props(bootstrap);
        p.put("transactional.id", "golden-txn");
        p.put("linger.ms", "0");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            String[][] txns = {{"commit", "t0", "t1", "t2"}, {"abort", "t3", "t4"}, {"commit", "t5"}};
            int i = 0;
            for (String[] txn : txns) {
                producer.beginTransaction();
                for (int j = 1; j < txn.length; j++, i++) {
                    producer.send(new ProducerRecord<>("golden-txn", 0, T0 + i, b("k" + i), b(txn[j]))).get();
                }
                if (txn[0].equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
            }
        }
        System.out.println("done");
    }
}
