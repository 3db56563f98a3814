package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/loadtest"
)

// PropStats are the propagation figures, latencies in microseconds.
type PropStats struct {
	Updates int
	// Visible is from sending the PUT to node A to node B showing the
	// new bid.
	Visible *hdrhistogram.Histogram
	// Put is from sending the PUT to A's answer (A has applied it).
	Put *hdrhistogram.Histogram
	// Slow lists the updates slower than 200ms either way, for a look at
	// the nodes' logs.
	Slow []string
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 120_000_000, 3) }

// propagate runs cfg.Updates sequential updates: each PUTs a random
// campaign on A with a bid never used before and polls B, from the moment
// the PUT is sent, until B shows that bid.
func propagate(ctx context.Context, cfg Config, cat *loadtest.Catalog, a, b *node, token string) (*PropStats, error) {
	st := &PropStats{Visible: newHist(), Put: newHist()}
	r := rand.New(rand.NewPCG(cfg.Seed, 0xb1d))
	type putResult struct {
		d   time.Duration
		err error
	}
	for i := range cfg.Updates {
		if cfg.Gap > 0 {
			select {
			case <-ctx.Done():
				return st, ctx.Err()
			case <-time.After(rand.N(cfg.Gap)):
			}
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		c := cat.Campaigns[r.IntN(len(cat.Campaigns))]
		want := campaign.Micros(1_000_000 + i + 1) // a bid of 1.000001, 1.000002, ...
		c.Bid.Amount = float64(want) / 1e6
		body, err := json.Marshal(&c)
		if err != nil {
			return st, err
		}
		done := make(chan putResult, 1)
		t0 := time.Now()
		go func() {
			err := put(a.admin()+"/v1/campaigns/"+c.ID, token, body)
			done <- putResult{time.Since(t0), err}
		}()
		seen, err := waitBid(ctx, b, c.ID, want, t0, cfg.Poll)
		if err != nil {
			return st, fmt.Errorf("update %d of %s: %w", i+1, c.ID, err)
		}
		pr := <-done
		if pr.err != nil {
			return st, fmt.Errorf("update %d of %s: %w", i+1, c.ID, pr.err)
		}
		if seen > 200*time.Millisecond || pr.d > 200*time.Millisecond {
			st.Slow = append(st.Slow, fmt.Sprintf("update %d of %s sent at %s: A→B %v, PUT %v",
				i+1, c.ID, t0.Format("15:04:05.000"), seen.Round(time.Millisecond), pr.d.Round(time.Millisecond)))
		}
		st.Visible.RecordValue(max(1, seen.Microseconds()))
		st.Put.RecordValue(max(1, pr.d.Microseconds()))
		st.Updates++
		if (i+1)%100 == 0 {
			fmt.Printf("  %d updates: A→B p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", i+1,
				float64(st.Visible.ValueAtQuantile(50))/1e3, float64(st.Visible.ValueAtQuantile(99))/1e3, float64(st.Visible.Max())/1e3)
		}
	}
	return st, nil
}

// put sends one PUT and expects 200.
func put(url, token string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

// waitBid polls GET /v1/campaigns/{id} on n every interval until the bid
// amount is want, and returns the time since t0; it gives up 30s after t0.
func waitBid(ctx context.Context, n *node, id string, want campaign.Micros, t0 time.Time, every time.Duration) (time.Duration, error) {
	deadline := t0.Add(30 * time.Second)
	url := n.admin() + "/v1/campaigns/" + id
	var got struct {
		Bid struct {
			Amount campaign.Micros `json:"amount"`
		} `json:"bid"`
	}
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(b, &got) == nil && got.Bid.Amount == want {
				return time.Since(t0), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("node B does not show bid %v after 30s (last: %v, error %v)", want, got.Bid.Amount, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(every):
		}
	}
}
