package loadtest

import (
	"math"
	"testing"
	"time"
)

func TestScheduleConstant(t *testing.T) {
	s := NewSchedule(500, 2*time.Second, 0, nil)
	if s.Total() != 1000 {
		t.Fatalf("total %d", s.Total())
	}
	for _, i := range []int64{0, 1, 499, 999} {
		if got, want := s.At(i), time.Duration(i)*2*time.Millisecond; absDur(got-want) > time.Microsecond {
			t.Errorf("At(%d) = %v, want %v", i, got, want)
		}
	}
	if n := s.CountBefore(time.Second); n != 500 {
		t.Errorf("CountBefore(1s) = %d", n)
	}
}

func TestScheduleRamp(t *testing.T) {
	s := NewSchedule(1000, 2*time.Second, time.Second, nil)
	// Half the rate on average during the ramp: 500 + 1000.
	if n := s.Total(); n < 1490 || n > 1510 {
		t.Errorf("total %d, want ~1500", n)
	}
	if n := s.CountBefore(500 * time.Millisecond); n < 115 || n > 135 {
		t.Errorf("first half-second of the ramp: %d, want ~125", n)
	}
	last := time.Duration(-1)
	for i := range s.Total() {
		at := s.At(i)
		if at < last || at > 2*time.Second {
			t.Fatalf("At(%d) = %v after %v", i, at, last)
		}
		last = at
	}
}

func TestScheduleDayShape(t *testing.T) {
	shape := DefaultDayShape()
	s := NewSchedule(100, 24*time.Second, 0, shape)
	if n := s.Total(); n < 2395 || n > 2400 {
		t.Errorf("total %d, want 2400 (rate is the mean)", n)
	}
	sum := 0.0
	for _, v := range shape {
		sum += v
	}
	for h, v := range shape {
		want := 100 * 24 * v / sum
		if got := s.RateAt(time.Duration(h)*time.Second + 500*time.Millisecond); math.Abs(got-want) > 1e-9 {
			t.Errorf("hour %d: rate %v, want %v", h, got, want)
		}
	}
	// Peak to trough ~8.6x, as the data says.
	if r := s.RateAt(4500*time.Millisecond) / s.RateAt(20500*time.Millisecond); r < 8 || r > 9 {
		t.Errorf("peak/trough %v", r)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
