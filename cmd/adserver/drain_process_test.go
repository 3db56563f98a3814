package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// balancer is a trivial load balancer on the client side: round-robin over
// the nodes whose /readyz answered 200 at the last health check, checked
// every 100ms as a load balancer would.
type balancer struct {
	addrs   []string
	healthy []atomic.Bool
	rr      atomic.Uint64
	check   *http.Client
	stop    chan struct{}
	done    chan struct{}
}

func newBalancer(addrs ...string) *balancer {
	lb := &balancer{addrs: addrs, healthy: make([]atomic.Bool, len(addrs)),
		check: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		stop:  make(chan struct{}), done: make(chan struct{})}
	go lb.run()
	return lb
}

func (lb *balancer) run() {
	defer close(lb.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for i, a := range lb.addrs {
			st, _, err := do(lb.check, "GET", "http://"+a+"/readyz", "", "")
			lb.healthy[i].Store(err == nil && st == 200)
		}
		select {
		case <-lb.stop:
			return
		case <-t.C:
		}
	}
}

func (lb *balancer) close() {
	close(lb.stop)
	<-lb.done
}

// pick returns the next healthy node's address.
func (lb *balancer) pick() (string, bool) {
	n := lb.rr.Add(1)
	for k := range uint64(len(lb.addrs)) {
		i := (n + k) % uint64(len(lb.addrs))
		if lb.healthy[i].Load() {
			return lb.addrs[i], true
		}
	}
	return "", false
}

func (lb *balancer) isHealthy(addr string) bool {
	for i, a := range lb.addrs {
		if a == addr {
			return lb.healthy[i].Load()
		}
	}
	return false
}

// loadLoop sends ad requests through a balancer with a few workers and
// fires each returned impression beacon at the node that served the ad.
// A failure is a connection error, a 5xx, or any answer other than 200 or
// 204 for an ad (204 for a beacon).
type loadLoop struct {
	mu       sync.Mutex
	ok       map[string]int // answered ad requests per node
	failed   int
	failures []string
	stopped  atomic.Bool
	wg       sync.WaitGroup
}

func startLoad(c *http.Client, lb *balancer, workers int) *loadLoop {
	l := &loadLoop{ok: map[string]int{}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stopped.Load(); i++ {
				addr, ok := lb.pick()
				if !ok {
					l.fail("no healthy node")
					time.Sleep(10 * time.Millisecond)
					continue
				}
				st, ad, err := requestAd(c, addr, fmt.Sprintf("r-%d-%d", w, i), fmt.Sprintf("u-%d", i%1000))
				switch {
				case err != nil || (st != 200 && st != 204):
					l.fail(fmt.Sprintf("/v1/ad on %s: %d %v", addr, st, err))
					continue
				case st == 200:
					bst, b, err := do(c, "GET", ad.ImpressionURL, "", "")
					if err != nil || bst != 204 {
						l.fail(fmt.Sprintf("impression beacon %s: %d %s %v", ad.ImpressionURL, bst, b, err))
						continue
					}
				}
				l.mu.Lock()
				l.ok[addr]++
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *loadLoop) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.failures) < 10 {
		l.failures = append(l.failures, time.Now().Format("15:04:05.000 ")+msg)
	}
}

func (l *loadLoop) served(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[addr]
}

func (l *loadLoop) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRollingRestartDrain is issue 9's drain test: two adserver processes
// behind a client-side round-robin balancer that health-checks /readyz
// every 100ms, under steady ad and beacon traffic. Node A (a Kafka client
// of node B's embedded broker, so that B keeps Kafka up) gets SIGTERM with
// -drain 1s: its /readyz must answer 503 at once while /v1/ad and the
// beacons keep answering; the balancer stops sending to A; A exits with
// status 0; A restarts on the same data directory and ports and takes
// traffic again. No request may fail (connection error, 5xx, or any
// status other than 200/204) in the whole run.
func TestRollingRestartDrain(t *testing.T) {
	const drain = time.Second
	c := newClient(t)
	b := startProc(t, "node B", append(nodeArgs(t.TempDir(), "drain-b"), "-drain", drain.String())...)
	a := startProc(t, "node A", append(nodeArgs(t.TempDir(), "drain-a"), "-drain", drain.String(), "-kafka", b.kafka)...)
	b.waitReady(c)
	a.waitReady(c)
	putCatalog(t, c, b, campaignSpec{ID: "c-drain", Daily: "100000", Bid: "2.5", Priority: 5})
	waitCatalog(t, c, a, "c-drain")

	lb := newBalancer(a.serving, b.serving)
	defer lb.close()
	waitFor(t, 10*time.Second, "the balancer sees both nodes ready", func() bool {
		return lb.isHealthy(a.serving) && lb.isHealthy(b.serving)
	})
	load := startLoad(c, lb, 4)
	defer load.stop()
	waitFor(t, 20*time.Second, "traffic on both nodes", func() bool {
		return load.served(a.serving) >= 50 && load.served(b.serving) >= 50
	})

	// SIGTERM: /readyz 503 at once, serving goes on through the drain.
	term := time.Now()
	a.signal(syscall.SIGTERM)
	for {
		st, body, err := do(c, "GET", a.servingURL()+"/readyz", "", "")
		if err != nil {
			t.Fatalf("node A stopped answering /readyz %v after SIGTERM, before it reported not ready: %v",
				time.Since(term).Round(time.Millisecond), err)
		}
		if st == 503 {
			break
		}
		if st != 200 {
			t.Fatalf("node A /readyz after SIGTERM: %d %s", st, body)
		}
		if time.Since(term) > drain {
			t.Fatalf("node A /readyz still 200 %v after SIGTERM (drain %v)", time.Since(term).Round(time.Millisecond), drain)
		}
		time.Sleep(5 * time.Millisecond)
	}
	notReady := time.Since(term)
	probes := 0
	for probes == 0 || time.Since(term) < drain/2 {
		st, ad, err := requestAd(c, a.serving, fmt.Sprintf("probe-%d", probes), "probe-user")
		if err != nil || (st != 200 && st != 204) {
			t.Fatalf("node A /v1/ad %v into its drain: %d %v", time.Since(term).Round(time.Millisecond), st, err)
		}
		if st == 200 {
			if bst, body, err := do(c, "GET", ad.ImpressionURL, "", ""); err != nil || bst != 204 {
				t.Fatalf("node A impression beacon %v into its drain: %d %s %v", time.Since(term).Round(time.Millisecond), bst, body, err)
			}
		}
		probes++
		time.Sleep(20 * time.Millisecond)
	}
	if code := a.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("node A exited with status %d after SIGTERM, want 0", code)
	}
	exited := time.Since(term)
	if lb.isHealthy(a.serving) {
		t.Fatal("the balancer still counts node A healthy after it exited")
	}
	servedBefore := load.served(a.serving)

	// Restart A on the same data directory and ports; the balancer takes
	// it back once it is ready.
	startProc(t, "node A (restarted)", a.restartArgs()...)
	waitFor(t, startTimeout, "the balancer sees the restarted node A ready", func() bool { return lb.isHealthy(a.serving) })
	waitFor(t, 20*time.Second, "traffic on the restarted node A", func() bool {
		return load.served(a.serving) >= servedBefore+50
	})
	load.stop()

	load.mu.Lock()
	failed, failures, okA, okB := load.failed, load.failures, load.ok[a.serving], load.ok[b.serving]
	load.mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	if failed > 0 {
		t.Errorf("%d requests failed during the rolling restart of node A", failed)
	}
	t.Logf("/readyz 503 %v after SIGTERM; %d direct /v1/ad probes answered during the drain; exit 0 %v after SIGTERM; requests answered: node A %d (%d after its restart), node B %d; failed %d",
		notReady.Round(time.Millisecond), probes, exited.Round(time.Millisecond), okA, okA-servedBefore, okB, failed)
}
