package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// chHTTP queries ClickHouse over its HTTP interface, straight (never
// through the proxy), to count what the shipper delivered.
type chHTTP struct {
	url string // e.g. http://127.0.0.1:8123
}

// query runs q and returns the answer without its trailing newline.
func (c chHTTP) query(ctx context.Context, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/", strings.NewReader(q))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ClickHouse HTTP %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ClickHouse HTTP %s: %q: status %d: %s", c.url, q, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// eventCounts returns count() and uniqExact(event_id) of db.events; both
// are 0 while the table does not exist yet.
func (c chHTTP) eventCounts(ctx context.Context, db string) (rows, unique int64, err error) {
	exists, err := c.query(ctx, fmt.Sprintf("EXISTS TABLE %s.events", db))
	if err != nil {
		return 0, 0, err
	}
	if exists != "1" {
		return 0, 0, nil
	}
	s, err := c.query(ctx, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM %s.events FORMAT TSV", db))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Split(s, "\t")
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("unexpected answer %q", s)
	}
	if rows, err = strconv.ParseInt(f[0], 10, 64); err == nil {
		unique, err = strconv.ParseInt(f[1], 10, 64)
	}
	return rows, unique, err
}

// ensureClickHouse checks that ClickHouse answers on its native and HTTP
// ports and, when it does not, starts it with script (scripts/clickhouse.sh
// start) and checks again.
func ensureClickHouse(ctx context.Context, native string, c chHTTP, script string, logf func(string, ...any)) error {
	up := func() error {
		conn, err := net.DialTimeout("tcp", native, 2*time.Second)
		if err != nil {
			return err
		}
		conn.Close()
		v, err := c.query(ctx, "SELECT 1")
		if err != nil {
			return err
		}
		if v != "1" {
			return fmt.Errorf("SELECT 1 answered %q", v)
		}
		return nil
	}
	err := up()
	if err == nil || script == "" {
		return err
	}
	logf("ClickHouse does not answer (%v); starting it: bash %s start", err, script)
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bash %s start: %w", script, err)
	}
	return up()
}
