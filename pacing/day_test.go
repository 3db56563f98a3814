package pacing

import (
	"testing"
	"time"
)

func TestDayBounds(t *testing.T) {
	for _, tc := range []struct {
		tz, day string
		start   string // UTC
		hours   float64
	}{
		{"UTC", "2026-11-24", "2026-11-24T00:00:00Z", 24},
		{"Asia/Seoul", "2026-11-24", "2026-11-23T15:00:00Z", 24},
		{"America/New_York", "2026-03-08", "2026-03-08T05:00:00Z", 23}, // spring forward
		{"America/New_York", "2026-11-01", "2026-11-01T04:00:00Z", 25}, // fall back
		{"Europe/Berlin", "2026-03-29", "2026-03-28T23:00:00Z", 23},
		{"Europe/Berlin", "2026-10-25", "2026-10-24T22:00:00Z", 25},
		{"Asia/Kathmandu", "2026-11-24", "2026-11-23T18:15:00Z", 24},
		// Chile springs forward at midnight: 2026-09-06 00:00 does not
		// exist; the day starts at the transition (01:00 local).
		{"America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z", 23},
	} {
		t.Run(tc.tz+"/"+tc.day, func(t *testing.T) {
			loc := mustLoc(t, tc.tz)
			d, err := ParseDay(tc.day)
			if err != nil {
				t.Fatal(err)
			}
			start, end := d.Bounds(loc)
			if got := start.UTC().Format(time.RFC3339); got != tc.start {
				t.Errorf("start = %s, want %s", got, tc.start)
			}
			if got := end.Sub(start).Hours(); got != tc.hours {
				t.Errorf("day length = %vh, want %vh", got, tc.hours)
			}
			if DayOf(start, loc) != d || DayOf(end.Add(-time.Nanosecond), loc) != d || DayOf(end, loc) == d {
				t.Errorf("DayOf disagrees with Bounds at the edges")
			}
			if d.String() != tc.day || string(d.AppendText(nil)) != tc.day {
				t.Errorf("String = %s, AppendText = %s", d, d.AppendText(nil))
			}
		})
	}
}

func TestParseDayRejects(t *testing.T) {
	for _, s := range []string{"", "2026-13-01", "2026-1-1", "20261124", "2026-11-24T00:00:00Z", "2026-02-30", "2026-11-00", "-026-11-01", "2026-1a-01"} {
		if _, err := ParseDay(s); err == nil {
			t.Errorf("ParseDay(%q) succeeded", s)
		}
	}
}
