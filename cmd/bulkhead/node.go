package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/adserver/adserver/internal/adproc"
)

// node is the adserver process under test: serving, management and
// embedded-broker listeners on their own loopback ports, ClickHouse behind
// the proxy.
type node struct {
	bin        string
	dir        string // data dir; the log is dir + ".log"
	logLevel   string
	clickhouse string // native address (the proxy)
	database   string
	serving    string // host:port
	adminAddr  string
	broker     string
	extra      []string

	proc adproc.Process
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func (n *node) args() []string {
	return append([]string{
		"-data-dir", n.dir,
		"-listen", n.serving,
		"-admin-listen", n.adminAddr,
		"-kafka", "embedded",
		"-embedded-kafka-listen", n.broker,
		"-clickhouse", n.clickhouse,
		"-clickhouse-database", n.database,
		"-drain", "0s",
		"-log-level", n.logLevel,
	}, n.extra...)
}

func (n *node) cmdline() string { return n.bin + " " + strings.Join(n.args(), " ") }

func (n *node) servingURL() string { return "http://" + n.serving }
func (n *node) adminURL() string   { return "http://" + n.adminAddr }
func (n *node) logPath() string    { return n.dir + ".log" }

// freePorts returns n distinct free loopback addresses. Another process
// may take one before the node binds it; the node then fails to start
// with a clear error.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// checkFree fails if something already listens on addr.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address %s is taken (choose another -port-base): %w", addr, err)
	}
	return l.Close()
}

// start runs the process and waits until /readyz answers 200.
func (n *node) start(ctx context.Context, timeout time.Duration) error {
	n.proc.Name, n.proc.Bin, n.proc.Args, n.proc.Dir = "adserver", n.bin, n.args(), n.dir
	n.proc.ReadyURL = n.servingURL() + "/readyz"
	_, err := n.proc.Start(ctx, timeout)
	return err
}

// alive reports whether the process is still running.
func (n *node) alive() bool { return n.proc.Alive() }

// stop sends SIGTERM and waits for the process to exit (SIGKILL after
// 30s). It is a no-op for a node that is not running.
func (n *node) stop() { n.proc.Stop() }

// adminToken reads the token the node generated in its data dir.
func (n *node) adminToken() (string, error) { return n.proc.AdminToken() }

// metrics scrapes the node's /metrics into name{labels} → value.
func (n *node) metrics() (map[string]float64, error) {
	resp, err := httpClient.Get(n.adminURL() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}
