package pacing

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	var zero Config
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{NodeID: "a/b"}, "NodeID"},
		{Config{Nodes: -1}, "Nodes"},
		{Config{ControlInterval: time.Millisecond}, "ControlInterval"},
		{Config{ReservationExpiry: 2 * time.Hour}, "ReservationExpiry"},
		{Config{FinishEarly: 7 * time.Hour}, "FinishEarly"},
		{Config{CatchUp: time.Second}, "CatchUp"},
		{Config{InitialPassRate: 1.5}, "InitialPassRate"},
		{Config{MinPassRate: 0.5, InitialPassRate: 0.1}, "MinPassRate"},
		{Config{FreqCapMaxCost: -1}, "FreqCapMaxCost"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one about %s", tc.cfg, err, tc.want)
		}
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
	}
}
