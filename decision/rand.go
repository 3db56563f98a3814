package decision

import "unsafe"

// rand is a small splitmix64 generator: seeded, fast, not for secrets. One
// per goroutine (pooled), so no lock.
type rand struct{ s uint64 }

func newRand(seed uint64) *rand { return &rand{s: seed} }

// Uint64 returns the next value.
func (r *rand) Uint64() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// b2s aliases b as a string; b must not change while the string is used.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
