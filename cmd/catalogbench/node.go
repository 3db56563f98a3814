package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/adserver/adserver/internal/adproc"
)

// node is one adserver process: serving on port, management on port+1,
// and either its own embedded broker on broker or -kafka kafka.
type node struct {
	name     string
	bin      string
	logLevel string
	dir      string
	port     int
	broker   string // embedded broker address (node A)
	kafka    string // broker to use instead (node B)

	proc adproc.Process
}

var client = &http.Client{Timeout: 5 * time.Second}

func (n *node) args() []string {
	args := []string{
		"-data-dir", n.dir,
		"-listen", fmt.Sprintf("127.0.0.1:%d", n.port),
		"-admin-listen", fmt.Sprintf("127.0.0.1:%d", n.port+1),
		"-clickhouse", "off",
		"-drain", "0s",
		"-log-level", n.logLevel,
	}
	if n.kafka != "" {
		return append(args, "-kafka", n.kafka)
	}
	return append(args, "-kafka", "embedded", "-embedded-kafka-listen", n.broker)
}

func (n *node) cmdline() string { return n.bin + " " + strings.Join(n.args(), " ") }

func (n *node) serving() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }
func (n *node) admin() string   { return fmt.Sprintf("http://127.0.0.1:%d", n.port+1) }

// checkPorts fails if another process already listens on the node's ports.
func (n *node) checkPorts() error {
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", n.port), fmt.Sprintf("127.0.0.1:%d", n.port+1)}
	if n.broker != "" {
		addrs = append(addrs, n.broker)
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("node %s: port %s is taken (choose another -port-base): %w", n.name, a, err)
		}
		l.Close()
	}
	return nil
}

// start runs the process and waits until /readyz answers 200. It returns
// the time from just before the process started to the first 200.
func (n *node) start(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	n.proc.Name, n.proc.Bin, n.proc.Args, n.proc.Dir = "node "+n.name, n.bin, n.args(), n.dir
	n.proc.ReadyURL, n.proc.Poll = n.serving()+"/readyz", 5*time.Millisecond
	return n.proc.Start(ctx, timeout)
}

// stop sends SIGTERM and waits for the process to exit (SIGKILL after
// 30s). It is a no-op for a node that is not running.
func (n *node) stop() { n.proc.Stop() }

// indexCampaigns reads the node's adserver_index_campaigns gauge.
func (n *node) indexCampaigns() (int, error) {
	resp, err := client.Get(n.admin() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "adserver_index_campaigns "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no adserver_index_campaigns in " + n.admin() + "/metrics")
}

// waitCampaigns polls the node until its index holds want campaigns.
func (n *node) waitCampaigns(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := n.indexCampaigns()
		if err == nil && got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s holds %d campaigns after %v, want %d (last error: %v)", n.name, got, timeout, want, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
