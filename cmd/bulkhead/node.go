package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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

	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
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
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.log = logf
	n.cmd = exec.Command(n.bin, n.args()...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.exited = make(chan struct{})
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		n.cmd = nil
		return fmt.Errorf("cannot start %s: %w", n.bin, err)
	}
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	deadline := time.After(timeout)
	for {
		if n.ready() {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("adserver exited before it was ready (%v); its log %s ends with:\n%s",
				n.cmd.ProcessState, n.logPath(), tail(n.logPath(), 20))
		case <-deadline:
			return fmt.Errorf("adserver not ready after %v; its log: %s", timeout, n.logPath())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *node) ready() bool {
	resp, err := httpClient.Get(n.servingURL() + "/readyz")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// alive reports whether the process is still running.
func (n *node) alive() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the process to exit (SIGKILL after
// 30s). It is a no-op for a node that is not running.
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
	default:
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
	n.log.Close()
	n.cmd = nil
}

// adminToken reads the token the node generated in its data dir.
func (n *node) adminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(n.dir, "admin-token"))
	if err != nil {
		return "", fmt.Errorf("cannot read the admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

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

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
