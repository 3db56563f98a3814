// Package chtest gives integration tests the ClickHouse server that
// scripts/clickhouse.sh starts (make test does), and databases of their
// own on it. A server that does not answer fails the test: CI must not
// pass with the ClickHouse tests skipped.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultAddr is the native-protocol address scripts/clickhouse.sh uses.
const DefaultAddr = "127.0.0.1:9000"

// Addr returns the address tests use, $ADSERVER_TEST_CLICKHOUSE or
// DefaultAddr, without checking it.
func Addr() string {
	if a := os.Getenv("ADSERVER_TEST_CLICKHOUSE"); a != "" {
		return a
	}
	return DefaultAddr
}

// Reachable returns Addr, failing t when nothing accepts connections
// there.
func Reachable(t testing.TB) string {
	t.Helper()
	addr := Addr()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("ClickHouse does not answer at %s (start it with scripts/clickhouse.sh start, or set ADSERVER_TEST_CLICKHOUSE): %v", addr, err)
	}
	c.Close()
	return addr
}

// Database returns the name of a database of t's own: prefix, then t's
// name in lower case reduced to letters, digits and underscores (at most
// 30 of them; the node's -clickhouse-database takes nothing else), then
// 8 random hex digits. It does not create it; when t ends, it is
// dropped through conn (unless $ADSERVER_TEST_KEEP_DB is set, to look at
// it afterwards) and conn is closed. conn must answer: Database pings it.
func Database(t testing.TB, conn driver.Conn, prefix string) string {
	t.Helper()
	if err := conn.Ping(context.Background()); err != nil {
		conn.Close()
		t.Fatalf("ClickHouse at %s does not answer: %v", Addr(), err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	if len(name) > 30 {
		name = name[:30]
	}
	db := prefix + name + "_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		if os.Getenv("ADSERVER_TEST_KEEP_DB") == "" {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
				t.Logf("drop database %s: %v", db, err)
			}
		}
		conn.Close()
	})
	return db
}
