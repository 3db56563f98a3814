package targeting

import (
	"slices"
	"strconv"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestAttrs(t *testing.T) {
	a := AcquireAttrs()
	defer ReleaseAttrs(a)
	a.Add(campaign.IDCountry, " KR ")
	a.Add(campaign.IDCountry, "kr") // duplicate after normalization
	a.Add(campaign.IDCountry, "Us")
	a.Add(campaign.IDCountry, "  ") // empty
	a.Add(campaign.IDHour, "9")     // derived from the query's time
	a.Add(campaign.IDWeekday, "mon")
	a.Add(campaign.AttrID(200), "x") // unknown
	a.Add(campaign.IDSegment, "Ünïcode")
	if got := a.Values(campaign.IDCountry); !slices.Equal(got, []string{"kr", "us"}) {
		t.Errorf("country %q", got)
	}
	if got := a.Values(campaign.IDSegment); !slices.Equal(got, []string{"ünïcode"}) {
		t.Errorf("segment %q", got)
	}
	if len(a.Values(campaign.IDHour)) != 0 || len(a.Values(campaign.IDWeekday)) != 0 || a.Values(200) != nil {
		t.Error("hour, weekday and unknown attributes should be ignored")
	}
	a.Set(campaign.IDCountry, "JP")
	if got := a.Values(campaign.IDCountry); !slices.Equal(got, []string{"jp"}) {
		t.Errorf("after Set: %q", got)
	}
	a.Clear(campaign.IDCountry)
	a.Reset()
	for attr := range campaign.AttrID(campaign.NumAttrs) {
		if len(a.Values(attr)) != 0 {
			t.Errorf("%s not reset", campaign.Attributes[attr])
		}
	}
}

// TestAttrsValuesSurviveGrowth checks that normalized copies stay intact
// when the internal buffer grows.
func TestAttrsValuesSurviveGrowth(t *testing.T) {
	a := new(Attrs)
	var want []string
	for i := range MaxValues {
		v := "KW" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		a.Add(campaign.IDKeyword, v)
		want = append(want, campaign.NormalizeValue(campaign.IDKeyword, v))
	}
	if !slices.Equal(a.Values(campaign.IDKeyword), want) {
		t.Error("values changed as the buffer grew")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"KR", " us ", "\tSports\n", "Ünïcode", "a\u00a0", "\u0085x", "İ", "mixed Case 9"} {
		f.Add(uint8(campaign.IDCountry), s)
	}
	f.Fuzz(func(t *testing.T, attr uint8, v string) {
		id := campaign.AttrID(int(attr) % campaign.NumAttrs)
		if timeAttr(id) {
			return
		}
		a := new(Attrs)
		a.Add(id, v)
		want := campaign.NormalizeValue(id, v)
		got := a.Values(id)
		if want == "" && len(got) != 0 || want != "" && !slices.Equal(got, []string{want}) {
			t.Fatalf("Add(%q) kept %q, NormalizeValue gives %q", v, got, want)
		}
	})
}

// An attribute keeps at most MaxValues values: a request listing thousands
// of keywords or segments is matched with its first MaxValues, and costs
// no more than that.
func TestAttrsMaxValues(t *testing.T) {
	a := AcquireAttrs()
	defer ReleaseAttrs(a)
	for i := range 3 * MaxValues {
		a.Add(campaign.IDKeyword, "kw"+strconv.Itoa(i))
		a.Add(campaign.IDKeyword, "kw"+strconv.Itoa(i)) // duplicates still ignored
	}
	got := a.Values(campaign.IDKeyword)
	if len(got) != MaxValues || got[0] != "kw0" || got[MaxValues-1] != "kw"+strconv.Itoa(MaxValues-1) {
		t.Fatalf("%d values, first %q, last %q; want the first %d", len(got), got[0], got[len(got)-1], MaxValues)
	}
	a.Add(campaign.IDCountry, "KR") // other attributes are not affected
	if v := a.Values(campaign.IDCountry); len(v) != 1 || v[0] != "kr" {
		t.Fatalf("country %v", v)
	}
}
