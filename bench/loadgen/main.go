// Command loadgen offers a bounded OTLP/gRPC load to a collector on loopback and counts what it
// accepted and refused.
//
// It builds a few distinct export requests once with pdata (traces: server spans with eight
// HTTP attributes; logs: access records with a string body; metrics: histogram, sum and gauge
// data points), serialises them once, and then only sends bytes, so its own cost per item stays
// far below the collector's. Traces get fresh trace ids in every request (request number XORed
// into each id of a copy): repeated ids would be answered by a tail-sampling gateway's decision
// cache instead of being held for decision_wait like real traffic. N streams send concurrently
// (each waits for its answer, like an SDK exporter); with -rate the requests are paced to that
// many items per second in total.
//
// `loadgen sink -grpc-port P -http-port Q` instead serves as the backend: see sink.go.
//
// Output, one JSON object per line on stdout: {"event":"measure_start"} when the measured
// window opens (after -warmup), then the summary of that window:
//
//	{"event":"summary","signal":"traces","accepted_items":..,"refused_items":..,...}
//
// Items are spans, log records or metric data points. An item is refused when its request
// failed (any gRPC error: the collector did not take it) or when the answer's partial_success
// names it as rejected.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// exportMethods are the OTLP/gRPC service methods per signal.
var exportMethods = map[string]string{
	"traces":  "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	"logs":    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
	"metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}

// rawCodec sends pre-serialised protobuf bytes and hands back the answer's bytes untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

// Name is "proto" so the request goes out as application/grpc+proto like any OTLP exporter's.
func (rawCodec) Name() string { return "proto" }

type options struct {
	endpoint string
	signal   string
	streams  int
	items    int
	distinct int
	rate     float64
	warmup   time.Duration
	duration time.Duration
	timeout  time.Duration
	seed     uint64
}

// counters are shared by all streams; the window's figures are differences of two snapshots.
type counters struct {
	requests atomic.Int64
	accepted atomic.Int64
	refused  atomic.Int64
	failed   atomic.Int64
	missed   atomic.Int64
}

type snapshot struct{ requests, accepted, refused, failed, missed int64 }

func (c *counters) snapshot() snapshot {
	return snapshot{c.requests.Load(), c.accepted.Load(), c.refused.Load(), c.failed.Load(), c.missed.Load()}
}

type summary struct {
	Event           string           `json:"event"`
	Signal          string           `json:"signal"`
	Streams         int              `json:"streams"`
	ItemsPerRequest int              `json:"items_per_request"`
	RequestBytes    int              `json:"request_bytes"`
	OfferedPerS     float64          `json:"offered_items_per_s"`
	Seconds         float64          `json:"seconds"`
	Requests        int64            `json:"requests"`
	AcceptedItems   int64            `json:"accepted_items"`
	RefusedItems    int64            `json:"refused_items"`
	FailedRequests  int64            `json:"failed_requests"`
	MissedRequests  int64            `json:"missed_requests"`
	AcceptedPerS    float64          `json:"accepted_items_per_s"`
	LatencyP50Ms    float64          `json:"latency_p50_ms"`
	LatencyP99Ms    float64          `json:"latency_p99_ms"`
	Errors          map[string]int64 `json:"errors"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sink" {
		if err := runSink(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen sink:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.endpoint, "endpoint", "127.0.0.1:4317", "collector OTLP/gRPC host:port (loopback)")
	flag.StringVar(&o.signal, "signal", "traces", "traces, logs or metrics")
	flag.IntVar(&o.streams, "streams", 4, "concurrent requests in flight")
	flag.IntVar(&o.items, "items", 500, "spans, log records or data points per request")
	flag.IntVar(&o.distinct, "distinct", 16, "distinct pre-built requests (different ids) to cycle through")
	flag.Float64Var(&o.rate, "rate", 0, "offered items per second in total; 0 sends as fast as answers come back")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "sending time before the measured window")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured window")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request deadline")
	flag.Uint64Var(&o.seed, "seed", 1, "seed for ids and value variation")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	method, ok := exportMethods[o.signal]
	if !ok {
		return fmt.Errorf("-signal %q: want traces, logs or metrics", o.signal)
	}
	if o.streams < 1 || o.items < 1 || o.distinct < 1 || o.duration <= 0 {
		return errors.New("-streams, -items, -distinct and -duration must be positive")
	}
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	payloads, err := buildPayloads(o.signal, o.items, o.distinct, rng)
	if err != nil {
		return err
	}
	// Traces: where each payload's trace ids are, so every request sends fresh ones.
	var traceIDs [][]int
	if o.signal == "traces" {
		for _, body := range payloads {
			offsets, err := traceIDOffsets(body)
			if err != nil {
				return err
			}
			traceIDs = append(traceIDs, offsets)
		}
	}
	conn, err := grpc.NewClient(o.endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return fmt.Errorf("connect %s: %w", o.endpoint, err)
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c counters
	var measuring atomic.Bool
	var errMu sync.Mutex
	errorsByCode := map[string]int64{}
	latencies := make([][]time.Duration, o.streams)

	// Pacing: a ticker hands out one token per request; a token that finds every stream busy is
	// counted as missed (the collector answers slower than the offered load).
	var tokens chan struct{}
	if o.rate > 0 {
		tokens = make(chan struct{}, o.streams)
		interval := time.Duration(float64(time.Second) * float64(o.items) / o.rate)
		go func() {
			next := time.Now()
			for ctx.Err() == nil {
				next = next.Add(interval)
				time.Sleep(time.Until(next))
				select {
				case tokens <- struct{}{}:
				default:
					c.missed.Add(1)
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for s := range o.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var answer, stamped []byte
			for n := s; ; n += o.streams {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				body := payloads[n%len(payloads)]
				if traceIDs != nil {
					stamped = stampTraceIDs(stamped, body, traceIDs[n%len(payloads)], uint64(n))
					body = stamped
				}
				callCtx, callCancel := context.WithTimeout(ctx, o.timeout)
				started := time.Now()
				err := conn.Invoke(callCtx, method, &body, &answer)
				took := time.Since(started)
				callCancel()
				if ctx.Err() != nil {
					return // cut off by the end of the run: counted nowhere
				}
				c.requests.Add(1)
				if measuring.Load() {
					latencies[s] = append(latencies[s], took)
				}
				if err != nil {
					c.failed.Add(1)
					c.refused.Add(int64(o.items))
					code := status.Code(err).String()
					errMu.Lock()
					errorsByCode[code]++
					errMu.Unlock()
					continue
				}
				rejected, perr := rejectedItems(o.signal, answer)
				if perr != nil { // an answer we cannot read: count the request as failed
					c.failed.Add(1)
					c.refused.Add(int64(o.items))
					errMu.Lock()
					errorsByCode["unreadable_answer"]++
					errMu.Unlock()
					continue
				}
				c.accepted.Add(int64(o.items) - rejected)
				c.refused.Add(rejected)
			}
		}()
	}

	time.Sleep(o.warmup)
	measuring.Store(true)
	start, began := c.snapshot(), time.Now()
	emit(map[string]string{"event": "measure_start"})
	time.Sleep(o.duration)
	end, seconds := c.snapshot(), time.Since(began).Seconds()
	measuring.Store(false)
	cancel()
	wg.Wait()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	errMu.Lock()
	defer errMu.Unlock()
	emit(summary{
		Event:           "summary",
		Signal:          o.signal,
		Streams:         o.streams,
		ItemsPerRequest: o.items,
		RequestBytes:    len(payloads[0]),
		OfferedPerS:     o.rate,
		Seconds:         seconds,
		Requests:        end.requests - start.requests,
		AcceptedItems:   end.accepted - start.accepted,
		RefusedItems:    end.refused - start.refused,
		FailedRequests:  end.failed - start.failed,
		MissedRequests:  end.missed - start.missed,
		AcceptedPerS:    float64(end.accepted-start.accepted) / seconds,
		LatencyP50Ms:    percentileMs(all, 0.50),
		LatencyP99Ms:    percentileMs(all, 0.99),
		Errors:          errorsByCode,
	})
	return nil
}

func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}

func emit(v any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

// rejectedItems reads partial_success from an Export answer.
func rejectedItems(signal string, answer []byte) (int64, error) {
	switch signal {
	case "traces":
		r := ptraceotlp.NewExportResponse()
		err := r.UnmarshalProto(answer)
		return r.PartialSuccess().RejectedSpans(), err
	case "logs":
		r := plogotlp.NewExportResponse()
		err := r.UnmarshalProto(answer)
		return r.PartialSuccess().RejectedLogRecords(), err
	default:
		r := pmetricotlp.NewExportResponse()
		err := r.UnmarshalProto(answer)
		return r.PartialSuccess().RejectedDataPoints(), err
	}
}
