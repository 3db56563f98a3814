package loadtest

import (
	"math"
	"sort"
	"time"
)

// Schedule is the open model's arrival plan: the intended send time of every
// request of a run, from a piecewise-constant rate (a constant rate, a linear
// ramp in small steps, or a day shape compressed into the run). It is
// immutable and safe for concurrent use.
type Schedule struct {
	segs     []segment
	total    int64
	duration time.Duration
}

type segment struct {
	start time.Duration // offset of the segment from the run start
	dur   time.Duration
	rate  float64 // requests per second
	cum   float64 // requests intended before start
}

// NewSchedule plans a run of the given duration at rate requests per second.
// ramp > 0 raises the rate linearly from 0 over the first ramp (in 100
// steps). A 24-value dayShape compresses a day into the duration: hour h
// lasts duration/24 and runs at rate·24·shape[h]/sum(shape), so that rate is
// the run's mean; hour 0 comes first.
func NewSchedule(rate float64, duration, ramp time.Duration, dayShape []float64) *Schedule {
	s := &Schedule{duration: duration}
	if rate <= 0 || duration <= 0 {
		return s
	}
	// Breakpoints: the day shape's hours and the ramp's steps.
	points := []time.Duration{0, duration}
	if len(dayShape) > 0 {
		for h := 1; h < len(dayShape); h++ {
			points = append(points, duration*time.Duration(h)/time.Duration(len(dayShape)))
		}
	}
	const rampSteps = 100
	if ramp > 0 {
		for k := 1; k <= rampSteps; k++ {
			if p := ramp * time.Duration(k) / rampSteps; p < duration {
				points = append(points, p)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	sum := 0.0
	for _, v := range dayShape {
		sum += v
	}
	cum := 0.0
	for i := 0; i+1 < len(points); i++ {
		a, b := points[i], points[i+1]
		if b <= a {
			continue
		}
		mid := a + (b-a)/2
		r := rate
		if len(dayShape) > 0 && sum > 0 {
			h := int(int64(mid) * int64(len(dayShape)) / int64(duration))
			r *= float64(len(dayShape)) * dayShape[h] / sum
		}
		if ramp > 0 && mid < ramp {
			step := int(int64(mid) * rampSteps / int64(ramp))
			r *= (float64(step) + 0.5) / rampSteps
		}
		s.segs = append(s.segs, segment{start: a, dur: b - a, rate: r, cum: cum})
		cum += r * (b - a).Seconds()
	}
	s.total = int64(math.Floor(cum + 1e-9))
	return s
}

// Total returns the number of requests the schedule plans.
func (s *Schedule) Total() int64 { return s.total }

// Duration returns the planned run length.
func (s *Schedule) Duration() time.Duration { return s.duration }

// At returns the intended send offset of request i (0-based): the time at
// which the planned count reaches i. i must be in [0, Total()).
func (s *Schedule) At(i int64) time.Duration {
	x := float64(i)
	k := sort.Search(len(s.segs), func(k int) bool {
		sg := s.segs[k]
		return sg.cum+sg.rate*sg.dur.Seconds() > x
	})
	if k == len(s.segs) {
		return s.duration
	}
	sg := s.segs[k]
	off := sg.start + time.Duration((x-sg.cum)/sg.rate*float64(time.Second))
	if end := sg.start + sg.dur; off > end {
		off = end
	}
	return off
}

// CountBefore returns how many requests are planned before offset t.
func (s *Schedule) CountBefore(t time.Duration) int64 {
	if t >= s.duration {
		return s.total
	}
	n := 0.0
	for _, sg := range s.segs {
		if t <= sg.start {
			break
		}
		n = sg.cum + sg.rate*min(t-sg.start, sg.dur).Seconds()
	}
	return min(int64(math.Ceil(n-1e-9)), s.total)
}

// RateAt returns the planned rate at offset t.
func (s *Schedule) RateAt(t time.Duration) float64 {
	for _, sg := range s.segs {
		if t >= sg.start && t < sg.start+sg.dur {
			return sg.rate
		}
	}
	return 0
}
