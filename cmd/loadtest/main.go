// Command loadtest drives one or many ad server nodes with realistic traffic
// and reports latency (coordinated-omission corrected), throughput, fill and
// beacons; `loadtest seed` creates a matching campaign catalog. All the work
// is in package loadtest; see its documentation for the command line.
package main

import (
	"os"

	"github.com/adserver/adserver/loadtest"
)

func main() {
	os.Exit(loadtest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
