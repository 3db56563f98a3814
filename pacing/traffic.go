package pacing

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed testdata/traffic-hourly.json
var trafficHourlyJSON []byte

// ReferenceTraffic returns the share of a day's ad traffic in each UTC
// hour (summing to 1) measured on real mobile ad traffic: the TalkingData
// AdTracking sample, 100,000 clicks over four days of November 2017, local
// time UTC+8; peak to trough is 8.6x. It drives the simulator and tests;
// the pacer itself learns its traffic profile from Observe.
func ReferenceTraffic() [24]float64 {
	var doc struct {
		Share []float64 `json:"hourly_share_utc"`
	}
	if err := json.Unmarshal(trafficHourlyJSON, &doc); err != nil || len(doc.Share) != 24 {
		panic(fmt.Sprintf("BUG: embedded testdata/traffic-hourly.json is invalid: %v", err))
	}
	var out [24]float64
	var sum float64
	for _, v := range doc.Share {
		sum += v
	}
	for h, v := range doc.Share {
		out[h] = v / sum
	}
	return out
}
