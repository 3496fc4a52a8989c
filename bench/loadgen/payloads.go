package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// route is one endpoint of the simulated API: its template and how a concrete path looks.
type route struct {
	method   string
	template string
	path     func(r *rand.Rand) string
}

var routes = []route{
	{"GET", "/api/v1/agents/{agent_id}/runs", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/agents/%d/runs", r.IntN(100000))
	}},
	{"POST", "/api/v1/agents/{agent_id}/runs", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/agents/%d/runs", r.IntN(100000))
	}},
	{"GET", "/api/v1/threads/{thread_id}/messages", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/threads/%08x-%04x-4%03x-a%03x-%012x/messages",
			r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&0xffffffffffff)
	}},
	{"POST", "/api/v1/threads/{thread_id}/messages", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/threads/%08x-%04x-4%03x-a%03x-%012x/messages",
			r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&0xffffffffffff)
	}},
	{"GET", "/api/v1/search", func(*rand.Rand) string { return "/api/v1/search" }},
	{"GET", "/api/v1/users/{user_id}", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/users/%d", r.IntN(1000000))
	}},
	{"DELETE", "/api/v1/sessions/{session_id}", func(r *rand.Rand) string {
		return fmt.Sprintf("/api/v1/sessions/%016x", r.Uint64())
	}},
	{"GET", "/api/v1/tools", func(*rand.Rand) string { return "/api/v1/tools" }},
}

var userAgents = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"python-httpx/0.28.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
}

func queryString(r *rand.Rand) string {
	return fmt.Sprintf("page=%d&limit=50&sort=-created_at&q=agent+run+%d&filter=status%%3Acompleted",
		r.IntN(40), r.IntN(1000))
}

func statusCode(r *rand.Rand) int64 {
	switch n := r.IntN(100); {
	case n < 2:
		return 500
	case n < 8:
		return 404
	case n < 12:
		return 201
	default:
		return 200
	}
}

func putResource(res pcommon.Resource, instance int) {
	a := res.Attributes()
	a.PutStr("service.name", "chenu-api")
	a.PutStr("service.version", "1.8.2")
	a.PutStr("service.instance.id", fmt.Sprintf("chenu-api-7d9f8b6c5-%05d", instance))
	a.PutStr("deployment.environment.name", "production")
	a.PutStr("telemetry.sdk.language", "python")
	a.PutStr("telemetry.sdk.name", "opentelemetry")
	a.PutStr("telemetry.sdk.version", "1.45.0")
}

func randomTraceID(r *rand.Rand) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

func randomSpanID(r *rand.Rand) pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

// buildPayloads returns `distinct` serialised export requests of `items` items each.
func buildPayloads(signal string, items, distinct int, r *rand.Rand) ([][]byte, error) {
	payloads := make([][]byte, 0, distinct)
	for d := range distinct {
		var (
			body []byte
			err  error
		)
		switch signal {
		case "traces":
			body, err = ptraceotlp.NewExportRequestFromTraces(buildTraces(items, d, r)).MarshalProto()
		case "logs":
			body, err = plogotlp.NewExportRequestFromLogs(buildLogs(items, d, r)).MarshalProto()
		default:
			body, err = pmetricotlp.NewExportRequestFromMetrics(buildMetrics(items, d, r)).MarshalProto()
		}
		if err != nil {
			return nil, fmt.Errorf("serialise %s request: %w", signal, err)
		}
		payloads = append(payloads, body)
	}
	return payloads, nil
}

// traceIDOffsets returns where the trace id of every span sits in a serialised traces request.
func traceIDOffsets(body []byte) ([]int, error) {
	request := ptraceotlp.NewExportRequest()
	if err := request.UnmarshalProto(body); err != nil {
		return nil, fmt.Errorf("read back traces request: %w", err)
	}
	var offsets []int
	resourceSpans := request.Traces().ResourceSpans()
	for i := range resourceSpans.Len() {
		scopeSpans := resourceSpans.At(i).ScopeSpans()
		for j := range scopeSpans.Len() {
			spans := scopeSpans.At(j).Spans()
			for k := range spans.Len() {
				id := spans.At(k).TraceID()
				offset := bytes.Index(body, id[:])
				if offset < 0 {
					return nil, fmt.Errorf("trace id %x not found in its serialised request", id)
				}
				offsets = append(offsets, offset)
			}
		}
	}
	return offsets, nil
}

// stampTraceIDs copies payload into buf and XORs request number n into the first eight bytes of
// every trace id, so that no trace id comes back in a later request: a tail-sampling gateway then
// holds every trace for its decision_wait, as with real traffic, instead of answering repeats of
// the few pre-built requests from its decision cache.
func stampTraceIDs(buf, payload []byte, offsets []int, n uint64) []byte {
	buf = append(buf[:0], payload...)
	for _, offset := range offsets {
		binary.LittleEndian.PutUint64(buf[offset:], binary.LittleEndian.Uint64(payload[offset:])^n)
	}
	return buf
}

// buildTraces: server spans with the eight attributes an HTTP server instrumentation sets.
func buildTraces(items, instance int, r *rand.Rand) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	putResource(rs.Resource(), instance)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("opentelemetry.instrumentation.fastapi")
	ss.Scope().SetVersion("0.66b1")
	now := time.Now()
	for range items {
		rt := routes[r.IntN(len(routes))]
		code := statusCode(r)
		span := ss.Spans().AppendEmpty()
		span.SetTraceID(randomTraceID(r))
		span.SetSpanID(randomSpanID(r))
		span.SetName(rt.method + " " + rt.template)
		span.SetKind(ptrace.SpanKindServer)
		took := time.Duration(1+r.IntN(250)) * time.Millisecond
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-took)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		if code >= 500 {
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		a := span.Attributes()
		a.PutStr("http.request.method", rt.method)
		a.PutStr("http.route", rt.template)
		a.PutStr("url.path", rt.path(r)+"?"+queryString(r))
		a.PutStr("url.scheme", "https")
		a.PutInt("http.response.status_code", code)
		a.PutStr("user_agent.original", userAgents[r.IntN(len(userAgents))])
		a.PutStr("client.address", fmt.Sprintf("10.42.%d.%d", r.IntN(256), r.IntN(256)))
		a.PutStr("server.address", "api.chenu.example")
	}
	return td
}

// buildLogs: access-log records correlated with a span, string body and six attributes.
func buildLogs(items, instance int, r *rand.Rand) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	putResource(rl.Resource(), instance)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("chenu_otel.access")
	now := pcommon.NewTimestampFromTime(time.Now())
	for range items {
		rt := routes[r.IntN(len(routes))]
		code := statusCode(r)
		path := rt.path(r)
		rec := sl.LogRecords().AppendEmpty()
		rec.SetTimestamp(now)
		rec.SetObservedTimestamp(now)
		rec.SetSeverityNumber(plog.SeverityNumberInfo)
		rec.SetSeverityText("INFO")
		rec.SetTraceID(randomTraceID(r))
		rec.SetSpanID(randomSpanID(r))
		rec.Body().SetStr(fmt.Sprintf("%s %s?%s -> %d in %d ms", rt.method, path, queryString(r), code, 1+r.IntN(250)))
		a := rec.Attributes()
		a.PutStr("event.name", "http.access")
		a.PutStr("http.request.method", rt.method)
		a.PutStr("http.route", rt.template)
		a.PutInt("http.response.status_code", code)
		a.PutStr("user_agent.original", userAgents[r.IntN(len(userAgents))])
		a.PutStr("code.function.name", "chenu_api.routes.agents.list_runs")
	}
	return ld
}

// durationBuckets are the HTTP semconv's advised boundaries for http.server.request.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// buildMetrics: half histogram points (request duration), a quarter sum points (token usage
// counter), a quarter gauge points, each point with its own attribute set.
func buildMetrics(items, instance int, r *rand.Rand) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	putResource(rm.Resource(), instance)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("chenu_otel")
	now := time.Now()
	start := pcommon.NewTimestampFromTime(now.Add(-time.Hour))
	ts := pcommon.NewTimestampFromTime(now)

	histogram := sm.Metrics().AppendEmpty()
	histogram.SetName("http.server.request.duration")
	histogram.SetUnit("s")
	h := histogram.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	tokens := sm.Metrics().AppendEmpty()
	tokens.SetName("gen_ai.client.token.usage.total")
	tokens.SetUnit("{token}")
	sum := tokens.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	active := sm.Metrics().AppendEmpty()
	active.SetName("chenu.agent.queue.depth")
	active.SetUnit("{run}")
	gauge := active.SetEmptyGauge()

	for i := range items {
		rt := routes[i%len(routes)]
		switch i % 4 {
		case 0, 1:
			p := h.DataPoints().AppendEmpty()
			p.SetStartTimestamp(start)
			p.SetTimestamp(ts)
			a := p.Attributes()
			a.PutStr("http.request.method", rt.method)
			a.PutStr("http.route", rt.template)
			a.PutInt("http.response.status_code", statusCode(r))
			a.PutStr("url.scheme", "https")
			a.PutStr("network.protocol.version", "1.1")
			a.PutStr("server.address", fmt.Sprintf("api-%d.chenu.example", i))
			p.ExplicitBounds().FromRaw(durationBuckets)
			counts := make([]uint64, len(durationBuckets)+1)
			var total uint64
			for b := range counts {
				counts[b] = uint64(r.IntN(1000))
				total += counts[b]
			}
			p.BucketCounts().FromRaw(counts)
			p.SetCount(total)
			p.SetSum(float64(total) * 0.08)
		case 2:
			p := sum.DataPoints().AppendEmpty()
			p.SetStartTimestamp(start)
			p.SetTimestamp(ts)
			a := p.Attributes()
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.request.model", fmt.Sprintf("chenu-model-%d", i%7))
			a.PutStr("gen_ai.token.type", []string{"input", "output"}[i%2])
			a.PutStr("gen_ai.agent.name", fmt.Sprintf("agent-%d", i))
			a.PutStr("server.address", "llm.chenu.example")
			p.SetIntValue(int64(r.IntN(1 << 20)))
		default:
			p := gauge.DataPoints().AppendEmpty()
			p.SetTimestamp(ts)
			a := p.Attributes()
			a.PutStr("chenu.queue.name", fmt.Sprintf("runs-%d", i))
			a.PutStr("chenu.queue.priority", "normal")
			a.PutStr("server.address", "worker.chenu.example")
			p.SetIntValue(int64(r.IntN(100)))
		}
	}
	return md
}
