package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	// Every compression an OTLP/gRPC exporter may be configured with, registered the way
	// the collector's own receivers do it.
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/snappy"
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/zstd"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip"
)

// runSink serves OTLP/gRPC and OTLP/HTTP on loopback and answers every export with success
// without decoding it: a backend that costs as little as possible, so that the collector under
// test, not its backend, is what runs out of CPU. GET /healthz on the HTTP port answers 200
// with the number of requests and bytes received so far.
func runSink(args []string) error {
	flags := flag.NewFlagSet("sink", flag.ExitOnError)
	grpcPort := flags.Int("grpc-port", 0, "OTLP/gRPC port on 127.0.0.1")
	httpPort := flags.Int("http-port", 0, "OTLP/HTTP port on 127.0.0.1 (any path; /healthz)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *grpcPort == 0 || *httpPort == 0 {
		return errors.New("sink: -grpc-port and -http-port are required")
	}
	var requests, received atomic.Int64

	grpcListener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *grpcPort))
	if err != nil {
		return err
	}
	server := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.MaxRecvMsgSize(64<<20),
		// Every OTLP Export method lands here; the answer is an empty ExportResponse (success).
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var body []byte
			if err := stream.RecvMsg(&body); err != nil {
				return err
			}
			requests.Add(1)
			received.Add(int64(len(body)))
			empty := []byte{}
			return stream.SendMsg(&empty)
		}))
	go func() { _ = server.Serve(grpcListener) }()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "{\"requests\":%d,\"bytes\":%d}\n", requests.Load(), received.Load())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body) // still compressed: never decoded
		requests.Add(1)
		received.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	return http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *httpPort), mux)
}
