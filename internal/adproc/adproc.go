// Package adproc runs an adserver binary as a child process, for the tools
// that measure real processes (cmd/bulkhead, cmd/catalogbench): its output
// goes to a log file, it is ready once its /readyz answers 200, and it is
// stopped with SIGTERM (SIGKILL after 30 s).
package adproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one adserver process. Set the exported fields, then Start.
// It is not safe for concurrent use.
type Process struct {
	// Name names the process in errors ("adserver", "node A").
	Name string
	Bin  string
	Args []string
	// Dir is the data directory (created by Start); the log is Dir + ".log".
	Dir string
	// ReadyURL is polled until it answers 200; Poll is the wait between
	// polls (default 20 ms).
	ReadyURL string
	Poll     time.Duration

	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

var client = &http.Client{Timeout: 5 * time.Second}

// LogPath is where the process's output goes.
func (p *Process) LogPath() string { return p.Dir + ".log" }

// Cmdline is the command line, for logs.
func (p *Process) Cmdline() string { return p.Bin + " " + strings.Join(p.Args, " ") }

// Start runs the process and waits until it is ready, the process exits,
// timeout passes or ctx is done. It returns the time from just before the
// process started to the first 200.
func (p *Process) Start(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	p.log = logf
	p.cmd = exec.Command(p.Bin, p.Args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.exited = make(chan struct{})
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		p.cmd = nil
		return 0, fmt.Errorf("cannot start %s (%s): %w", p.Name, p.Bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	poll := p.Poll
	if poll <= 0 {
		poll = 20 * time.Millisecond
	}
	deadline := time.After(timeout)
	for {
		if ok, _ := p.Ready(); ok {
			return time.Since(t0), nil
		}
		select {
		case <-p.exited:
			return 0, fmt.Errorf("%s exited before it was ready (%v); its log %s ends with:\n%s",
				p.Name, p.cmd.ProcessState, p.LogPath(), Tail(p.LogPath(), 20))
		case <-deadline:
			return 0, fmt.Errorf("%s not ready after %v; its log: %s", p.Name, timeout, p.LogPath())
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Ready reports whether ReadyURL answers 200.
func (p *Process) Ready() (bool, error) {
	resp, err := client.Get(p.ReadyURL)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// Pid is the process id, 0 when not started.
func (p *Process) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Alive reports whether the process is running.
func (p *Process) Alive() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after
// 30 s). It is a no-op for a process that is not running.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	p.log.Close()
	p.cmd = nil
}

// AdminToken reads the token the process generated in its data dir.
func (p *Process) AdminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, "admin-token"))
	if err != nil {
		return "", fmt.Errorf("cannot read the admin token of %s: %w", p.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Tail returns the last n lines of a file (or the error reading it).
func Tail(path string, n int) string {
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

// Executable returns path made absolute, or an error if it is not an
// executable file (flag is the option that named it, for the message).
func Executable(flag, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("cannot use %s %q: %w", flag, path, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s %q is not an executable file", flag, path)
	}
	return abs, nil
}

// WorkDir returns dir, created if missing, or with dir empty a new
// temporary directory named after pattern (see os.MkdirTemp).
func WorkDir(dir, pattern string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", pattern)
	}
	return dir, os.MkdirAll(dir, 0o755)
}
