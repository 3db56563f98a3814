package main

// Helpers of the multi-process tests: build the adserver binary once, run
// real adserver processes on free loopback ports, talk to them over HTTP
// like a client, a load balancer and an operator would.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/internal/chtest"
)

const (
	procAdminToken = "process-test-admin-token-0123456789"
	procSigningKey = "k1:process-test-signing-secret-0123456789"

	// startTimeout bounds a process's start (listening, then ready). It is
	// a liveness deadline, generous for a loaded 2-core machine.
	startTimeout = 45 * time.Second
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// adserverBinary builds this package (the adserver command) once per test
// binary, without -race, into a temporary directory and returns its path.
// Process tests are integration tests: -short skips them.
func adserverBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real adserver processes (skipped with -short)")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "adserver-proc-test-"); buildErr != nil {
			return
		}
		// go test puts its own GOROOT/bin first in PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("cannot find the go command to build adserver: %w", err)
			return
		}
		bin := filepath.Join(buildDir, "adserver")
		out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/adserver: %v\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// syncBuffer collects a child's output; safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one running (or exited) adserver process.
type proc struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited
	// state is the exit state, set before done is closed.
	state *os.ProcessState

	// Bound addresses, read from the "adserver listening" log line.
	serving, admin, kafka string
}

var (
	listeningLine = regexp.MustCompile(`msg="adserver listening".*`)
	servingAttr   = regexp.MustCompile(` serving=(\S+)`)
	adminAttr     = regexp.MustCompile(` admin=(\S+)`)
	kafkaAttr     = regexp.MustCompile(` kafka=(\S+)`)
)

// nodeArgs returns the flags every test node shares: loopback listeners on
// free ports, the shared admin token and signing key, events kept in the
// local log (-clickhouse off) and info logs. Flags appended later win.
func nodeArgs(dataDir, nodeID string) []string {
	return []string{
		"-listen", "127.0.0.1:0",
		"-admin-listen", "127.0.0.1:0",
		"-embedded-kafka-listen", "127.0.0.1:0",
		"-data-dir", dataDir,
		"-node-id", nodeID,
		"-admin-token", procAdminToken,
		"-signing-key", procSigningKey,
		"-clickhouse", "off",
		"-log-level", "info",
	}
}

// startProc starts an adserver with args and waits until it listens (not
// until it is ready: see waitReady). The process is killed at the end of
// the test if still running, and its output is logged if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(adserverBinary(t), args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: cannot start adserver: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s (adserver %s) ---\n%s--- end of %s ---",
				name, strings.Join(args, " "), tail(p.out.String(), 48<<10), name)
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if line := listeningLine.FindString(p.out.String()); line != "" {
			p.serving = attr(servingAttr, line)
			p.admin = attr(adminAttr, line)
			p.kafka = attr(kafkaAttr, line)
			if p.serving == "" || p.admin == "" {
				t.Fatalf("%s: cannot read the bound addresses from %q", name, line)
			}
			return p
		}
		if p.exited() {
			t.Fatalf("%s exited during start (%v)", name, p.state)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen after %v", name, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attr(re *regexp.Regexp, line string) string {
	if m := re.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// restartArgs returns p's flags with its listeners (and embedded broker)
// pinned to the addresses it had, so that a restarted process is reached
// where the old one was.
func (p *proc) restartArgs() []string {
	args := append([]string(nil), p.args...)
	args = append(args, "-listen", p.serving, "-admin-listen", p.admin)
	if p.kafka != "" && isEmbedded(p.args) {
		args = append(args, "-embedded-kafka-listen", p.kafka)
	}
	return args
}

func isEmbedded(args []string) bool {
	kafka := "embedded"
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-kafka" {
			kafka = args[i+1]
		}
	}
	return kafka == "embedded"
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) servingURL() string { return "http://" + p.serving }
func (p *proc) adminURL() string   { return "http://" + p.admin }

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(c *http.Client) {
	p.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		st, _, err := do(c, "GET", p.servingURL()+"/readyz", "", "")
		if err == nil && st == 200 {
			return
		}
		if p.exited() {
			p.t.Fatalf("%s exited before it was ready (%v)", p.name, p.state)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after %v (last /readyz: %d %v)", p.name, startTimeout, st, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (p *proc) kill9() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: cannot send %v: %v", p.name, sig, err)
	}
}

// waitExit waits up to d for the process to exit and returns its exit
// code (-1 when killed by a signal).
func (p *proc) waitExit(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("%s still running %v after it was told to stop", p.name, d)
		return 0
	}
}

// stop ends the process with SIGTERM (SIGKILL if it does not exit in time).
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill9()
	}
}

// newClient returns an HTTP client that does not follow redirects, keeps
// enough idle connections per node for the tests' workers, and is closed
// at the end of the test.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends one request and reads the whole answer.
func do(c *http.Client, method, u, token, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	r, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.StatusCode, b, err
}

// put writes a catalog item through p's management API and fails the test
// unless it answers 200.
func put(t *testing.T, c *http.Client, p *proc, path, body string) {
	t.Helper()
	st, b, err := do(c, "PUT", p.adminURL()+path, procAdminToken, body)
	if err != nil || st != 200 {
		t.Fatalf("PUT %s on %s: %d %s %v", path, p.name, st, b, err)
	}
}

const (
	advertiserJSON = `{"id":"adv-1","name":"Acme","api_key":"acme-key-0123456789abcdef","timezone":"UTC"}`
	placementJSON  = `{"id":"p-1","publisher_id":"pub-1","name":"Front page","format":"banner","sizes":[[300,250]],"floor":0.5}`
)

// campaignSpec is the part of a campaign the tests vary.
type campaignSpec struct {
	ID       string
	Daily    string // decimal, account currency
	Pacing   string // asap or even
	Bid      string // CPM, decimal
	Priority int
	// CapCount and CapWindow set a frequency cap when CapCount > 0.
	CapCount  int
	CapWindow string
}

// JSON returns the campaign as the management API takes it: run of
// network (no targeting), UTC days, one banner creative.
func (s campaignSpec) JSON() string {
	pacing := s.Pacing
	if pacing == "" {
		pacing = "asap"
	}
	c := map[string]any{
		"id": s.ID, "advertiser_id": "adv-1", "status": "active",
		"start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z", "timezone": "UTC",
		"budget":   map[string]any{"daily": json.Number(s.Daily), "total": json.Number("100000")},
		"pacing":   pacing,
		"bid":      map[string]any{"model": "cpm", "amount": json.Number(s.Bid)},
		"priority": s.Priority,
		"creatives": []any{map[string]any{
			"id": "cr-" + s.ID, "format": "banner", "w": 300, "h": 250,
			"html": "<a href='{{CLICK_URL}}'>ad</a>", "landing_url": "https://example.com/",
			"adomain": []string{"example.com"},
		}},
	}
	if s.CapCount > 0 {
		c["frequency_cap"] = map[string]any{"count": s.CapCount, "window": s.CapWindow}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return string(b)
}

// putCatalog writes the advertiser, the placement and the campaigns
// through p.
func putCatalog(t *testing.T, c *http.Client, p *proc, campaigns ...campaignSpec) {
	t.Helper()
	put(t, c, p, "/v1/advertisers/adv-1", advertiserJSON)
	put(t, c, p, "/v1/placements/p-1", placementJSON)
	for _, s := range campaigns {
		put(t, c, p, "/v1/campaigns/"+s.ID, s.JSON())
	}
}

// waitCatalog waits until p has applied every campaign (written through
// another node) and the placement.
func waitCatalog(t *testing.T, c *http.Client, p *proc, campaignIDs ...string) {
	t.Helper()
	paths := []string{"/v1/advertisers/adv-1", "/v1/placements/p-1"}
	for _, id := range campaignIDs {
		paths = append(paths, "/v1/campaigns/"+id)
	}
	deadline := time.Now().Add(startTimeout)
	for _, path := range paths {
		for {
			st, _, err := do(c, "GET", p.adminURL()+path, "", "")
			if err == nil && st == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has not applied %s after %v: %d %v", p.name, path, startTimeout, st, err)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// servedAd is one ad of a /v1/ad answer.
type servedAd struct {
	CampaignID    string      `json:"campaign_id"`
	Price         json.Number `json:"price"`
	ImpressionURL string      `json:"impression_url"`
}

// adBody is a /v1/ad request for placement p-1, one 300x250 slot; user ""
// sends no user id.
func adBody(reqID, user string) string {
	u := ""
	if user != "" {
		u = `"user":{"id":` + strconv.Quote(user) + `},`
	}
	return `{"id":` + strconv.Quote(reqID) + `,"placement_id":"p-1",` + u +
		`"device":{"type":"mobile","os":"android","ip":"203.0.113.9"},"geo":{"country":"KR"},` +
		`"slots":[{"id":"s1","w":300,"h":250}]}`
}

// requestAd sends one ad request to the serving address addr. It returns
// the status and, with 200, the one ad.
func requestAd(c *http.Client, addr, reqID, user string) (int, *servedAd, error) {
	st, b, err := do(c, "POST", "http://"+addr+"/v1/ad", "", adBody(reqID, user))
	if err != nil || st != 200 {
		return st, nil, err
	}
	var r struct{ Ads []servedAd }
	if err := json.Unmarshal(b, &r); err != nil || len(r.Ads) != 1 {
		return st, nil, fmt.Errorf("/v1/ad answer %s: want one ad (%v)", b, err)
	}
	return st, &r.Ads[0], nil
}

// beaconCost returns what an impression beacon charges (CPM: the signed
// clearing price / 1000, in micros) and its auction id.
func beaconCost(impressionURL string) (cost int64, auctionID string, err error) {
	u, err := url.Parse(impressionURL)
	if err != nil {
		return 0, "", err
	}
	q := u.Query()
	pr, err := strconv.ParseInt(q.Get("pr"), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("impression URL %s: price: %w", impressionURL, err)
	}
	if q.Get("a") == "" {
		return 0, "", errors.New("impression URL without auction id: " + impressionURL)
	}
	return pr / 1000, q.Get("a"), nil
}

// micros parses a JSON price.
func micros(t *testing.T, n json.Number) int64 {
	t.Helper()
	m, err := campaign.ParseMicros(n.String())
	if err != nil {
		t.Fatalf("price %q: %v", n, err)
	}
	return int64(m)
}

// metric returns the value of an unlabelled metric on p's /metrics.
func metric(c *http.Client, p *proc, name string) (float64, error) {
	st, b, err := do(c, "GET", p.adminURL()+"/metrics", "", "")
	if err != nil || st != 200 {
		return 0, fmt.Errorf("GET /metrics on %s: %d %v", p.name, st, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s has no metric %s", p.name, name)
}

// testClickHouse returns the ClickHouse address the tests use
// ($ADSERVER_TEST_CLICKHOUSE, default 127.0.0.1:9000), a fresh database
// name with the given prefix, dropped at the end of the test, and a
// connection. A server that does not answer fails the test: CI starts one
// with scripts/clickhouse.sh.
func testClickHouse(t *testing.T, prefix string) (addr, db string, conn driver.Conn) {
	t.Helper()
	addr = chtest.Addr()
	conn, err := clickhouse.Open(addr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatalf("ClickHouse at %s: %v", addr, err)
	}
	return addr, chtest.Database(t, conn, prefix), conn
}
