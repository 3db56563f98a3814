// Package server holds the fasthttp handlers of the adserver's two
// listeners and the wiring between the engines behind them.
//
// The serving listener answers ad requests, tracking beacons and health
// checks; the management listener answers the catalog API, switches,
// reports, the dashboard, metrics and pprof. Each listener has its own
// fasthttp.Server with its own timeouts, body limit and concurrency limit, so
// a flood on one cannot starve the other.
//
// Handlers are thin: they parse, call an engine, and write the answer. A
// Server is safe for concurrent use once Start has been called.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/targeting/feed"
	"github.com/valyala/fasthttp"
)

// Server is one adserver node's HTTP front. Fill in the fields, then call
// Start.
type Server struct {
	Config config.Config
	Feed   *feed.Feed
	Engine *decision.Engine
	// Switches returns the operators' current switches; nil: all on.
	Switches func() *decision.Switches
	Logger   *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Guards limit and screen ad requests; nil: none.
	Guards *Guards
	// Tracker answers the tracking endpoints; nil answers 404.
	Tracker *Tracker
	// Reports and Dashboard serve GET /v1/reports and /dashboard/ on the
	// management listener (the reports package); nil answers 404.
	Reports, Dashboard fasthttp.RequestHandler
	// ReadyChecks must all pass for /readyz to answer 200 (the catalog
	// feed's readiness is always checked).
	ReadyChecks []func() error

	adminToken string
	draining   atomic.Bool

	serving, admin     *fasthttp.Server
	servingLn, adminLn net.Listener
	done               chan error
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// switches returns the kill switches in force: the Switches override if
// set, else those of the feed's current snapshot (one atomic load, no lock).
// It never returns nil; the result is shared and must not be modified.
func (s *Server) switches() *decision.Switches {
	var sw *decision.Switches
	if s.Switches != nil {
		sw = s.Switches()
	} else {
		sw = s.Feed.Snapshot().Switches
	}
	if sw == nil {
		return feed.DefaultSwitches()
	}
	return sw
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Start opens both listeners and serves in the background. adminToken is
// the resolved admin token.
func (s *Server) Start(adminToken string) error {
	if err := s.Listen(adminToken); err != nil {
		return err
	}
	s.Serve()
	return nil
}

// Listen opens both listeners without serving yet, so that the caller can
// learn the bound addresses (ServingAddr) before requests arrive.
func (s *Server) Listen(adminToken string) error {
	s.adminToken = adminToken
	var err error
	if s.servingLn, err = net.Listen("tcp", s.Config.Listen); err != nil {
		return fmt.Errorf("cannot listen on -listen %s: %w", s.Config.Listen, err)
	}
	if s.adminLn, err = net.Listen("tcp", s.Config.AdminListen); err != nil {
		s.servingLn.Close()
		return fmt.Errorf("cannot listen on -admin-listen %s: %w", s.Config.AdminListen, err)
	}
	return nil
}

// Serve starts serving both listeners in the background.
func (s *Server) Serve() {
	s.serving = newFastServer("adserver", s.Config.Serving, s.serveServing, s.log())
	s.admin = newFastServer("adserver-admin", s.Config.Admin, s.serveAdmin, s.log())
	s.done = make(chan error, 2)
	go func() { s.done <- s.serving.Serve(s.servingLn) }()
	go func() { s.done <- s.admin.Serve(s.adminLn) }()
}

// ServingAddr and AdminAddr return the bound addresses (useful with port 0).
func (s *Server) ServingAddr() string { return s.servingLn.Addr().String() }

// AdminAddr returns the management listener's bound address.
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// debugLogger routes fasthttp's per-connection error messages to debug
// level: a client's broken request is answered with a 4xx and is no news
// for the operator.
type debugLogger struct{ log *slog.Logger }

func (l debugLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func newFastServer(name string, l config.Listener, h fasthttp.RequestHandler, log *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               h,
		Name:                  name,
		ReadTimeout:           l.ReadTimeout,
		WriteTimeout:          l.WriteTimeout,
		IdleTimeout:           l.IdleTimeout,
		MaxRequestBodySize:    l.MaxBody,
		Concurrency:           l.Concurrency,
		ErrorHandler:          serverErrorHandler,
		Logger:                debugLogger{log},
		NoDefaultServerHeader: false,
		NoDefaultContentType:  true,
		// Reduce memory for idle keep-alive connections.
		ReduceMemoryUsage: false,
	}
}

// Drain marks the node not ready (/readyz answers 503) while it keeps
// serving.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for in-flight requests,
// until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.serving.ShutdownWithContext(ctx) }()
	go func() { errc <- s.admin.ShutdownWithContext(ctx) }()
	return errors.Join(<-errc, <-errc)
}

// Err returns a channel that receives an error if a listener stops
// unexpectedly.
func (s *Server) Err() <-chan error { return s.done }

// ready reports why the node is not ready, or nil.
func (s *Server) ready() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	if !s.Feed.Ready() {
		return errors.New("catalog bootstrap from Kafka not complete")
	}
	for _, c := range s.ReadyChecks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}
