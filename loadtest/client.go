package loadtest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Paths of the serving listener (DESIGN.md section 3).
const (
	PathAd      = "/v1/ad"
	PathOpenRTB = "/openrtb2/bid"
)

// target is one server node: a HostClient for ad requests, sized for the
// run's concurrency, and one for beacons, so that beacons never take a
// connection an ad request is waiting for.
type target struct {
	base   string // scheme://host[:port], as given
	host   string // Host header
	ad     *fasthttp.HostClient
	beacon *fasthttp.HostClient
}

// parseTarget checks an http(s) base URL and returns scheme, host (Host
// header) and the dial address.
func parseTarget(raw string) (scheme, host, addr string, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", "", fmt.Errorf("cannot parse target %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", "", fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", "", "", fmt.Errorf("target %q: no host", raw)
	}
	addr = u.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	return u.Scheme, u.Host, addr, nil
}

func newHostClient(scheme, addr string, conns int, timeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:     addr,
		Name:     "adserver-loadtest",
		IsTLS:    scheme == "https",
		MaxConns: conns,
		// A load tester must see every failure: no silent retries.
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxIdleConnDuration:       time.Minute,
		// Workers never exceed MaxConns; a short wait covers the moment a
		// connection is being returned to the pool.
		MaxConnWaitTimeout:       timeout,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		TLSConfig:                &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // load tests often use self-signed certs
	}
}

func newTargets(raw []string, concurrency, beaconConns int, timeout time.Duration) ([]*target, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("no target")
	}
	ts := make([]*target, 0, len(raw))
	for _, r := range raw {
		scheme, host, addr, err := parseTarget(r)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{
			base:   scheme + "://" + host,
			host:   host,
			ad:     newHostClient(scheme, addr, concurrency, timeout),
			beacon: newHostClient(scheme, addr, beaconConns, timeout),
		})
	}
	return ts, nil
}

func closeTargets(ts []*target) {
	for _, t := range ts {
		t.ad.CloseIdleConnections()
		t.beacon.CloseIdleConnections()
	}
}

// beaconPath returns the path and query of a tracking URL: the harness
// always sends a beacon to the node that served the ad, whatever host the
// URL names, so a load test never sends traffic anywhere but its targets.
func beaconPath(u string) (string, bool) {
	for _, scheme := range [...]string{"http://", "https://"} {
		if rest, ok := strings.CutPrefix(u, scheme); ok {
			i := strings.IndexByte(rest, '/')
			if i < 0 {
				return "/", true
			}
			return rest[i:], true
		}
	}
	if strings.HasPrefix(u, "/") {
		return u, true
	}
	return "", false
}
