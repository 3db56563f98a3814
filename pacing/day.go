package pacing

import (
	"fmt"
	"time"
)

// Day is a calendar date in a campaign's time zone, encoded as yyyymmdd
// (20261124). Daily budgets reset when the campaign's Day changes, at local
// midnight; a Day lasts 23, 24 or 25 hours depending on daylight saving.
type Day int32

// DayOf returns the date of t in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return Day(y*10000 + int(m)*100 + d)
}

// Date returns the year, month and day of d.
func (d Day) Date() (year int, month time.Month, day int) {
	return int(d) / 10000, time.Month(int(d) / 100 % 100), int(d) % 100
}

// String formats d as 2006-01-02.
func (d Day) String() string {
	y, m, dd := d.Date()
	return fmt.Sprintf("%04d-%02d-%02d", y, int(m), dd)
}

// AppendText appends d formatted as 2006-01-02 to dst.
func (d Day) AppendText(dst []byte) []byte {
	y, m, dd := d.Date()
	return append(dst, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(m)/10), byte('0'+int(m)%10), '-', byte('0'+dd/10), byte('0'+dd%10))
}

// ParseDay parses a date written as 2006-01-02.
func ParseDay(s string) (Day, error) {
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	if len(s) == 10 && s[4] == '-' && s[7] == '-' {
		y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
		if y > 0 && m >= 1 && m <= 12 && d >= 1 && d <= 31 {
			// time.Date normalizes 2026-02-30 to March: reject it.
			if t := time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC); t.Day() == d {
				return Day(y*10000 + m*100 + d), nil
			}
		}
	}
	return 0, fmt.Errorf("cannot parse day %q: want YYYY-MM-DD", s)
}

// Bounds returns the first instant of d in loc and the first instant of the
// next day: [start, end). end-start is 24h except on daylight-saving days.
func (d Day) Bounds(loc *time.Location) (start, end time.Time) {
	y, m, dd := d.Date()
	return localMidnight(y, m, dd, loc), localMidnight(y, m, dd+1, loc)
}

// localMidnight returns the first instant of the local date y-m-d (d may
// overflow the month; time.Date normalizes it). Where a zone skips midnight
// (a daylight-saving jump at 00:00, as in America/Santiago or Asia/Beirut),
// the day starts at the transition.
func localMidnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	ny, nm, nd := time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Date()
	if ty, tm, td := t.Date(); ty != ny || tm != nm || td != nd {
		// time.Date picked the offset of the previous day: t reads as
		// 23:00 the day before. The day begins where that zone ends.
		if _, zoneEnd := t.ZoneBounds(); !zoneEnd.IsZero() && zoneEnd.After(t) {
			t = zoneEnd
		}
	}
	return t
}
