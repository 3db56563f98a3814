package campaign

import (
	"encoding/json"
	"testing"
)

func TestParseMicros(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Micros
		ok   bool
	}{
		{"0", 0, true},
		{"2.5", 2_500_000, true},
		{"100.0", 100_000_000, true},
		{"0.000001", 1, true},
		{"1e-6", 1, true},
		{"1.5E2", 150_000_000, true},
		{"-0.25", -250_000, true},
		{"0.1234560", 123_456, true}, // trailing zero past 6 places is exact
		{"0.0000001", 0, false},      // 7 significant decimals
		{"1e-7", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"", 0, false},
		{"abc", 0, false},
		{"1e", 0, false},
		{"1e99", 0, false},
		{"99999999999999", 0, false},
		{"1000000000000", 1_000_000_000_000 * MicrosPerUnit, true},
		{"0x10", 0, false},
		{"--1", 0, false},
	} {
		got, err := ParseMicros(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMicrosJSONRoundTrip(t *testing.T) {
	for _, m := range []Micros{0, 1, 10, 2_500_000, 123_456_789, -42, 100_000_000} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Micros
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("%d → %s → %d, %v", m, b, back, err)
		}
	}
	if s := Micros(2_500_000).String(); s != "2.5" {
		t.Errorf("String = %q, want 2.5", s)
	}
	var m Micros
	if err := json.Unmarshal([]byte(`"2.5"`), &m); err == nil {
		t.Error("a quoted number was accepted as money")
	}
}

func FuzzParseMicros(f *testing.F) {
	for _, s := range []string{"0", "2.5", "1e-6", "0.0000001", "-3", "1E3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMicros(s)
		if err != nil {
			return
		}
		// Whatever parses must print and parse back to the same micros.
		back, err := ParseMicros(m.String())
		if err != nil || back != m {
			t.Fatalf("%q → %d → %q → %d, %v", s, m, m.String(), back, err)
		}
	})
}
