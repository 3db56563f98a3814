package events

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleEvent() Event {
	return Event{
		Type:         TypeClick,
		ID:           EventID("auc-1", "s1", TypeClick),
		Time:         time.Date(2026, 11, 24, 10, 30, 0, 123456000, time.UTC),
		NodeID:       "node-a",
		AuctionID:    "auc-1",
		SlotID:       "s1",
		AdvertiserID: "adv-1",
		CampaignID:   "c-1",
		CreativeID:   "cr-1",
		PlacementID:  "p-1",
		PublisherID:  "pub-1",
		Country:      "KR",
		UserID:       "u-ü",
		PriceMicros:  2_500_000,
		CostMicros:   2_500,
		Test:         true,
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, e := range []Event{sampleEvent(), {Type: TypeLoss}, {Type: TypeImpression, PriceMicros: -5, Time: time.Unix(1, 0).UTC()}} {
		b := e.AppendBinary([]byte("prefix"))
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("AppendBinary clobbered dst")
		}
		if PayloadKind(b[6:]) != KindEvent {
			t.Fatalf("PayloadKind = %v", PayloadKind(b[6:]))
		}
		var got Event
		got.Seq = 42
		if err := got.Unmarshal(b[6:]); err != nil {
			t.Fatal(err)
		}
		e.Seq = 42
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestDecisionRoundTrip(t *testing.T) {
	d := Decision{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), NodeID: "n", AuctionID: "a", SlotID: "s",
		PlacementID: "p", PublisherID: "pub", Country: "US", Candidates: 12, Bids: 3, WinnerAdvertiserID: "adv",
		WinnerCampaignID: "c", WinnerCreativeID: "cr", BidMicros: 3_000_000, PriceMicros: 2_000_001,
		FloorMicros: 500_000, NoFillReason: "", LatencyMicros: 87, Test: false}
	b := d.AppendBinary(nil)
	if PayloadKind(b) != KindDecision {
		t.Fatal("kind")
	}
	var got Decision
	if err := got.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("got %+v\nwant %+v", got, d)
	}
	var e Event
	if err := e.Unmarshal(b); err == nil {
		t.Fatal("decision decoded as event")
	}
}

func TestEventUnmarshalRejects(t *testing.T) {
	e := sampleEvent()
	good := e.AppendBinary(nil)
	for i := 0; i < len(good); i++ {
		var got Event
		_ = got.Unmarshal(good[:i]) // must not panic
		if i < len(good) && got.Unmarshal(good[:i]) == nil && i < 20 {
			t.Fatalf("accepted %d-byte prefix", i)
		}
	}
	var got Event
	if err := got.Unmarshal(append(good, 'x')); err == nil {
		t.Fatal("accepted trailing byte")
	}
}

func TestEventIDDeterministic(t *testing.T) {
	a := EventID("auc", "s1", TypeImpression)
	if a != EventID("auc", "s1", TypeImpression) {
		t.Fatal("not deterministic")
	}
	for _, other := range []ID{EventID("auc", "s1", TypeClick), EventID("auc", "s2", TypeImpression),
		EventID("au", "cs1", TypeImpression), EventID("auc"+strings.Repeat("x", 300), "s1", TypeImpression)} {
		if other == a {
			t.Fatal("collision")
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = EventID("auction-123456", "slot-1", TypeClick) }); n != 0 {
		t.Fatalf("EventID allocates %v", n)
	}
}

func TestTypeNames(t *testing.T) {
	for ty := TypeImpression; ty < typeEnd; ty++ {
		if got, ok := ParseType(ty.String()); !ok || got != ty {
			t.Fatalf("%v", ty)
		}
		if typeFromCode(typeCodes[ty]) != ty {
			t.Fatalf("code %v", ty)
		}
	}
}

func FuzzEventUnmarshal(f *testing.F) {
	e := sampleEvent()
	f.Add(e.AppendBinary(nil))
	d := Decision{AuctionID: "a"}
	f.Add(d.AppendBinary(nil))
	f.Add([]byte{1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := e.Unmarshal(b); err == nil {
			// Whatever decodes must survive a round trip unchanged. (The
			// bytes may differ: non-minimal varints, ignored flag bits.)
			var again Event
			if err := again.Unmarshal(e.AppendBinary(nil)); err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("second round trip: %v\n%+v\n%+v", err, again, e)
			}
		}
		var dd Decision
		_ = dd.Unmarshal(b)
	})
}
