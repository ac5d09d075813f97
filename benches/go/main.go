// Command franz is the franz-go peer of `cargo xtask bench` (issue 15):
// one program with three modes, each printing one result line
// `client=franz-go mode=.. records=.. secs=.. rate=..` on success.
//
//	franz produce --bootstrap B --topic T --records N [--linger-ms 5] [--compression none|lz4|zstd]
//	franz consume --bootstrap B --topic T --records N
//	franz copy    --bootstrap B --input I --output O --group G --txn-id X --records N [--txn-size 1000]
//
// produce: idempotent, acks=all, 100-byte values, no key; every delivery
// is checked (one failed record fails the run). The rate is records over
// the time from the first send to the last acknowledgement.
//
// consume: a fresh group, read_committed, from the earliest offset; the
// rate is records over the time from the first record to the N-th.
//
// copy: a kgo.GroupTransactSession reads the input (read_committed) and
// writes every record to the output in transactions of at most
// --txn-size records (one poll each), committing the group's offsets in
// each; the rate is records over the whole run, start-up included.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: franz produce|consume|copy [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "")
	topic := fs.String("topic", "bench", "")
	input := fs.String("input", "", "")
	output := fs.String("output", "", "")
	group := fs.String("group", "", "")
	txnID := fs.String("txn-id", "", "")
	records := fs.Int64("records", 1000000, "")
	lingerMs := fs.Int("linger-ms", 5, "")
	compression := fs.String("compression", "none", "")
	txnSize := fs.Int("txn-size", 1000, "")
	_ = fs.Parse(os.Args[2:])
	switch mode {
	case "produce":
		produce(*bootstrap, *topic, *records, *lingerMs, *compression)
	case "consume":
		consume(*bootstrap, *topic, *records)
	case "copy":
		copyTopic(*bootstrap, *input, *output, *group, *txnID, *records, *txnSize)
	default:
		fail("unknown mode " + mode)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	}
	fail("unknown compression " + name)
	return kgo.NoCompression()
}

func produce(bootstrap, topic string, n int64, lingerMs int, compression string) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(lingerMs)*time.Millisecond),
		kgo.ProducerBatchCompression(codec(compression)),
	)
	if err != nil {
		fail(err.Error())
	}
	defer cl.Close()
	ctx := context.Background()
	// Warm-up: metadata, connections, producer id.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		fail("warm-up: " + err.Error())
	}
	value := make([]byte, 100)
	for i := range value {
		value[i] = 0x5a
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(int(n))
	start := time.Now()
	for i := int64(0); i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err.Error())
				}
			}
			wg.Done()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		fail(fmt.Sprintf("%d deliveries failed, first: %v", f, firstErr.Load()))
	}
	fmt.Printf("client=franz-go mode=produce records=%d secs=%.3f rate=%.1f\n", n, secs, float64(n)/secs)
}

func consume(bootstrap, topic string, n int64) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(fmt.Sprintf("franz-consume-%d", time.Now().UnixNano())),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		fail(err.Error())
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var got int64
	var start time.Time
	for got < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			fail(fmt.Sprintf("read %d of %d records: %v", got, n, err))
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("fetch %s[%d]: %v", t, p, err))
		})
		k := int64(fetches.NumRecords())
		if k > 0 && start.IsZero() {
			start = time.Now()
		}
		got += k
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("client=franz-go mode=consume records=%d secs=%.3f rate=%.1f\n", got, secs, float64(got)/secs)
}

func copyTopic(bootstrap, input, output, group, txnID string, n int64, txnSize int) {
	started := time.Now()
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(bootstrap),
		kgo.TransactionalID(txnID),
		kgo.DefaultProduceTopic(output),
		kgo.ConsumeTopics(input),
		kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	if err != nil {
		fail(err.Error())
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var done int64
	for done < n {
		fetches := sess.PollRecords(ctx, txnSize)
		if err := ctx.Err(); err != nil {
			fail(fmt.Sprintf("copied %d of %d records: %v", done, n, err))
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("fetch %s[%d]: %v", t, p, err))
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fail("begin: " + err.Error())
		}
		var failed atomic.Int64
		var wg sync.WaitGroup
		wg.Add(len(recs))
		for _, r := range recs {
			out := &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers}
			sess.Produce(ctx, out, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
				wg.Done()
			})
		}
		wg.Wait()
		committed, err := sess.End(ctx, failed.Load() == 0)
		if err != nil {
			fail("end: " + err.Error())
		}
		if committed {
			done += int64(len(recs))
		}
	}
	secs := time.Since(started).Seconds()
	fmt.Printf("client=franz-go mode=copy records=%d secs=%.3f rate=%.1f\n", done, secs, float64(done)/secs)
}
