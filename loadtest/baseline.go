package loadtest

import (
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
)

// BaselineServer is the fastest possible server on this machine: fasthttp
// answering every request with an empty 204 (no fill) on a loopback port.
// Running the same schedule against it separates the ad server's cost from
// the harness's and the machine's.
type BaselineServer struct {
	ln  net.Listener
	srv *fasthttp.Server
	err chan error
}

// StartBaseline listens on 127.0.0.1:0 and serves until Close.
func StartBaseline() (*BaselineServer, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot start baseline server: %w", err)
	}
	b := &BaselineServer{
		ln: ln,
		srv: &fasthttp.Server{
			Handler:               func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusNoContent) },
			Name:                  "baseline",
			NoDefaultServerHeader: true,
			NoDefaultDate:         true,
			NoDefaultContentType:  true,
		},
		err: make(chan error, 1),
	}
	go func() { b.err <- b.srv.Serve(ln) }()
	return b, nil
}

// URL returns the server's base URL.
func (b *BaselineServer) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops the server and waits for it.
func (b *BaselineServer) Close() error {
	err := b.srv.Shutdown()
	if serr := <-b.err; err == nil {
		err = serr
	}
	return err
}
