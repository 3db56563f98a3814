package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuSample is a reading of the machine's and two processes' CPU time.
type cpuSample struct {
	at            time.Time
	machine, idle float64 // seconds, all cores
	node, self    float64 // seconds of the adserver and of this process
	ch            float64 // seconds of the clickhouse processes
}

// CPUShare is the CPU used during a phase, in cores (1 = one core busy
// the whole time), split into the adserver, this harness (load generator,
// proxy, report driver), ClickHouse (which other users of the machine may
// share) and everything else, and the idle rest.
type CPUShare struct {
	Node       float64 `json:"node"`
	Self       float64 `json:"harness"`
	ClickHouse float64 `json:"clickhouse"`
	Other      float64 `json:"other"`
	Idle       float64 `json:"idle"`
}

// readCPU samples /proc; a field it cannot read stays 0 (not Linux, or the
// process is gone).
func readCPU(nodePid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(b, []byte("\n"))
		f := strings.Fields(string(line))
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			if i >= 8 { // guest time is already in user
				break
			}
			s.machine += x / clockTicks
			if i == 3 || i == 4 { // idle, iowait
				s.idle += x / clockTicks
			}
		}
	}
	s.self = procCPU("self")
	if nodePid > 0 {
		s.node = procCPU(strconv.Itoa(nodePid))
	}
	for _, pid := range clickhousePids() {
		s.ch += procCPU(pid)
	}
	return s
}

// clickhousePids lists the processes named clickhouse*.
func clickhousePids() []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []string
	for _, e := range ents {
		if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
			if b, err := os.ReadFile("/proc/" + n + "/comm"); err == nil && bytes.HasPrefix(b, []byte("clickhouse")) {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// procCPU returns utime+stime of /proc/<pid>/stat in seconds.
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64) // field 14, utime
	k, _ := strconv.ParseFloat(f[12], 64) // field 15, stime
	return (u + k) / clockTicks
}

// share turns two samples into cores used.
func share(a, b cpuSample) CPUShare {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return CPUShare{}
	}
	busy := (b.machine - a.machine) - (b.idle - a.idle)
	c := CPUShare{Node: (b.node - a.node) / wall, Self: (b.self - a.self) / wall,
		ClickHouse: max(0, b.ch-a.ch) / wall, Idle: (b.idle - a.idle) / wall}
	c.Other = max(0, busy/wall-c.Node-c.Self-c.ClickHouse)
	return c
}

func (c CPUShare) String() string {
	return fmt.Sprintf("%.2f/%.2f/%.2f/%.2f/%.2f", c.Node, c.Self, c.ClickHouse, c.Other, c.Idle)
}

// saturatedByOthers: the machine had less than minIdle cores idle while
// processes other than the adserver, the harness and ClickHouse used at
// least minOther: the phase measured the neighbours as much as the node.
func (c CPUShare) saturatedByOthers() bool {
	const minIdle, minOther = 0.1, 0.5
	return c.Idle < minIdle && c.Other >= minOther
}
