package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what a Proxy does with the traffic between its clients and the
// upstream.
type Mode int32

// Proxy modes.
const (
	// ModePass forwards bytes both ways as they come.
	ModePass Mode = iota
	// ModeDown closes every connection and the listener: new connections
	// are refused (ECONNREFUSED), existing ones see a reset or EOF.
	ModeDown
	// ModeBlackhole keeps accepting connections and keeps existing ones
	// open, but forwards nothing in either direction: no answer, no FIN,
	// no RST, as a hung server or a dropped route behaves. Bytes already
	// read are held and delivered if the mode changes to pass or slow.
	ModeBlackhole
	// ModeSlow forwards every chunk Delay after it was read, in each
	// direction (a delay line: latency is added, throughput is not capped
	// beyond the bounded queue).
	ModeSlow
)

var modeNames = [...]string{"normal", "down", "blackhole", "slow"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int32(m))
	}
	return modeNames[m]
}

// parseMode is the inverse of Mode.String.
func parseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (use normal, down, blackhole or slow)", s)
}

// ProxyStats are a Proxy's counts since it started.
type ProxyStats struct {
	Accepted int64 `json:"accepted"` // client connections accepted
	Active   int64 `json:"active"`   // client connections open now
	Up       int64 `json:"bytes_up"` // bytes forwarded client → upstream
	Down     int64 `json:"bytes_down"`
	DialErrs int64 `json:"dial_errors"` // upstream dials that failed
}

// Proxy is a TCP proxy in front of one upstream address whose behaviour
// is switched at run time by SetMode. It listens on a fixed address for
// its whole life (re-listening on it after ModeDown), so clients keep
// their configured address.
//
// Every method is safe for concurrent use.
type Proxy struct {
	addr     string
	upstream string
	delay    time.Duration

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced at every mode change
	ln      net.Listener  // nil while down or closed
	conns   map[*proxyConn]struct{}
	closed  bool
	wg      sync.WaitGroup // accept loops and connections

	accepted, active, up, down, dialErrs atomic.Int64
}

// NewProxy listens on listen (host:port; port 0 picks a free one) and
// forwards to upstream. delay is ModeSlow's added latency per direction.
func NewProxy(listen, upstream string, delay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: cannot listen on %s: %w", listen, err)
	}
	p := &Proxy{
		addr: ln.Addr().String(), upstream: upstream, delay: delay,
		changed: make(chan struct{}), ln: ln, conns: map[*proxyConn]struct{}{},
	}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.addr }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Stats returns the proxy's counts.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Accepted: p.accepted.Load(), Active: p.active.Load(),
		Up: p.up.Load(), Down: p.down.Load(), DialErrs: p.dialErrs.Load()}
}

// SetMode switches the proxy to m. Entering ModeDown closes the listener
// and every connection; leaving it listens again on the same address.
func (p *Proxy) SetMode(m Mode) error {
	if m < ModePass || m > ModeSlow {
		return fmt.Errorf("proxy: invalid mode %d", m)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy: closed")
	}
	if m == p.mode {
		return nil
	}
	if m == ModeDown {
		p.ln.Close()
		p.ln = nil
		for c := range p.conns {
			c.close()
		}
	} else if p.mode == ModeDown {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("proxy: cannot listen again on %s: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.ln != nil {
			p.ln.Close()
			p.ln = nil
		}
		for c := range p.conns {
			c.close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// state returns the mode and the channel closed at its next change.
func (p *Proxy) state() (Mode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.changed
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		cc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed (down or Close)
		}
		c := &proxyConn{p: p, client: cc, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed || p.mode == ModeDown {
			p.mu.Unlock()
			cc.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.accepted.Add(1)
		p.active.Add(1)
		go c.run()
	}
}

// proxyConn is one client connection and its upstream.
type proxyConn struct {
	p        *Proxy
	client   net.Conn
	upstream net.Conn // set by run before the pumps start
	once     sync.Once
	done     chan struct{} // closed by close
}

// close closes both sides; the pumps then end.
func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		if c.upstream != nil {
			c.upstream.Close()
		}
	})
}

func (c *proxyConn) run() {
	p := c.p
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		p.active.Add(-1)
		p.wg.Done()
	}()
	// A blackholed connection is accepted (by the kernel) and never
	// answered: the upstream is not even dialled until the mode allows.
	if !c.waitPassable() {
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		p.dialErrs.Add(1)
		return
	}
	p.mu.Lock()
	select {
	case <-c.done: // closed while dialling
		p.mu.Unlock()
		up.Close()
		return
	default:
	}
	c.upstream = up
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pump(c.client, up, &p.up) }()
	go func() { defer wg.Done(); c.pump(up, c.client, &p.down) }()
	wg.Wait()
}

// waitPassable blocks while the proxy is in ModeBlackhole; it reports
// false when the connection was closed meanwhile.
func (c *proxyConn) waitPassable() bool {
	for {
		m, changed := c.p.state()
		if m != ModeBlackhole {
			return true
		}
		select {
		case <-changed:
		case <-c.done:
			return false
		}
	}
}

// chunk is a piece of the byte stream and when it was read.
type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst through a bounded delay line: a reader that
// stops reading while blackholed, and a writer that holds chunks while
// blackholed and until their time has come in ModeSlow. When src ends
// cleanly, dst is half-closed after the last chunk; any error closes the
// whole connection.
func (c *proxyConn) pump(src, dst net.Conn, counter *atomic.Int64) {
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		buf := make([]byte, 32<<10)
		for c.waitPassable() {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case q <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		if !c.holdUntilDue(ch.at) {
			return
		}
		if _, err := dst.Write(ch.b); err != nil {
			c.close()
			return
		}
		counter.Add(int64(len(ch.b)))
	}
	select {
	case <-c.done:
	default:
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
}

// holdUntilDue waits while the proxy is blackholed and, in ModeSlow, until
// at+delay. It re-evaluates at every mode change and reports false when
// the connection was closed.
func (c *proxyConn) holdUntilDue(at time.Time) bool {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		m, changed := c.p.state()
		var wake <-chan time.Time
		switch m {
		case ModeBlackhole:
		case ModeSlow:
			wait := time.Until(at.Add(c.p.delay))
			if wait <= 0 {
				return true
			}
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			wake = t.C
		default:
			return true
		}
		select {
		case <-changed:
		case <-wake:
			return true
		case <-c.done:
			return false
		}
	}
}
