package server

import (
	"sync"
	"testing"

	"github.com/adserver/adserver/decision"
	"github.com/valyala/fastjson"
)

// Requests without device, site or app share one empty object: parsing
// them concurrently must not write to it (go test -race fails if it does).
func TestParseAdRequestConcurrentAbsentObjects(t *testing.T) {
	body := []byte(`{"id":"r-1","placement_id":"p-1","slots":[{"id":"s1","w":300,"h":250}]}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p fastjson.Parser
			var r decision.Request
			for range 100 {
				r.Reset()
				if err := parseAdRequest(&p, body, &r); err != nil {
					t.Errorf("parse: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
