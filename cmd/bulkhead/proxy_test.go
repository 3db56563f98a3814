package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer accepts connections on a loopback port and echoes every byte.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func newTestProxy(t *testing.T, delay time.Duration) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", echoServer(t), delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyPassThrough(t *testing.T) {
	p := newTestProxy(t, time.Second)
	c := dial(t, p.Addr())
	for _, msg := range []string{"hello", string(bytes.Repeat([]byte("x"), 200<<10))} {
		got, err := roundTrip(c, msg, 5*time.Second)
		if err != nil || got != msg {
			t.Fatalf("round trip of %d bytes: %v (got %d bytes)", len(msg), err, len(got))
		}
	}
	// The counters move just after each write returns, which may be after
	// the client has read the bytes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.Stats()
		if st.Accepted == 1 && st.Up >= 200<<10 && st.Down >= 200<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want 1 connection and >= 200KiB each way", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProxyDownRefusesAndCloses(t *testing.T) {
	p := newTestProxy(t, time.Second)
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.SetMode(ModeDown); err != nil {
		t.Fatal(err)
	}
	// The open connection is closed: a read ends at once (EOF or reset),
	// not at the deadline.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("read on a connection open at down: %v, want EOF or reset", err)
	}
	// New connections are refused.
	if nc, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); err == nil {
		nc.Close()
		t.Fatal("dial while down succeeded")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while down: %v, want connection refused", err)
	}
	// Back up on the same address.
	if err := p.SetMode(ModePass); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, p.Addr())
	if got, err := roundTrip(c2, "after", 2*time.Second); err != nil || got != "after" {
		t.Fatalf("after down: %q, %v", got, err)
	}
}

func TestProxyBlackholeHangs(t *testing.T) {
	p := newTestProxy(t, time.Second)
	old := dial(t, p.Addr())
	if _, err := roundTrip(old, "warm", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.SetMode(ModeBlackhole); err != nil {
		t.Fatal(err)
	}
	// An existing connection and a new one (accepted) both hang until
	// the client's deadline: no answer, no close.
	fresh := dial(t, p.Addr())
	for name, c := range map[string]net.Conn{"existing": old, "new": fresh} {
		_, err := roundTrip(c, "ping", 300*time.Millisecond)
		if !isTimeout(err) {
			t.Errorf("%s connection in blackhole: %v, want a timeout", name, err)
		}
	}
	// When the route comes back, the held bytes are delivered.
	if err := p.SetMode(ModePass); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"existing": old, "new": fresh} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("%s connection after blackhole: %q, %v; want the held ping", name, buf, err)
		}
	}
}

func TestProxySlowDelays(t *testing.T) {
	const delay = 150 * time.Millisecond
	p := newTestProxy(t, delay)
	c := dial(t, p.Addr())
	if err := p.SetMode(ModeSlow); err != nil {
		t.Fatal(err)
	}
	// Each direction adds delay: a round trip takes at least twice it.
	t0 := time.Now()
	got, err := roundTrip(c, "slow", 10*time.Second)
	if err != nil || got != "slow" {
		t.Fatalf("slow round trip: %q, %v", got, err)
	}
	if d := time.Since(t0); d < 2*delay {
		t.Errorf("slow round trip took %v, want >= %v", d, 2*delay)
	}
	// Back to normal: a waiting chunk is released at once.
	if _, err := c.Write([]byte("fast")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := p.SetMode(ModePass); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "fast" {
		t.Fatalf("after slow: %q, %v", buf, err)
	}
}

func TestProxyClose(t *testing.T) {
	p := newTestProxy(t, time.Second)
	c := dial(t, p.Addr())
	if err := p.SetMode(ModeBlackhole); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a blackholed connection open")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("read after Close: %v, want EOF or reset", err)
	}
	if err := p.SetMode(ModePass); err == nil {
		t.Error("SetMode after Close succeeded")
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModePass, ModeDown, ModeBlackhole, ModeSlow} {
		got, err := parseMode(m.String())
		if err != nil || got != m {
			t.Errorf("parseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := parseMode("sideways"); err == nil {
		t.Error("parseMode(sideways) succeeded")
	}
}
