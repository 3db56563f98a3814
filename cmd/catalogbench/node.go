package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
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
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(n.dir+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	n.log = logf
	n.cmd = exec.Command(n.bin, n.args()...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.exited = make(chan struct{})
	t0 := time.Now()
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("cannot start node %s: %w", n.name, err)
	}
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	deadline := time.After(timeout)
	for {
		if ok, _ := n.ready(); ok {
			return time.Since(t0), nil
		}
		select {
		case <-n.exited:
			return 0, fmt.Errorf("node %s exited before it was ready (%v); its log %s ends with:\n%s",
				n.name, n.cmd.ProcessState, logf.Name(), tail(logf.Name(), 20))
		case <-deadline:
			return 0, fmt.Errorf("node %s not ready after %v; its log: %s", n.name, timeout, logf.Name())
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (n *node) ready() (bool, error) {
	resp, err := client.Get(n.serving() + "/readyz")
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
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
