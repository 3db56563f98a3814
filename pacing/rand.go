package pacing

// splitmix64 finalizer: a bijective mix of a 64-bit counter into a
// well-distributed 64-bit value (Steele, Lea, Flood 2014).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

const golden = 0x9e3779b97f4a7c15

// streamSeed derives the initial state of one campaign's random stream. It
// hashes the id with FNV-1a so that the stream is the same in every process
// for the same Config.Seed (reproducible simulations).
func streamSeed(seed uint64, id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return mix64(seed ^ mix64(h))
}

// passScale is 1<<53: a pass threshold is the pass probability times 2^53,
// compared with the top 53 bits of a random draw.
const passScale = 1 << 53

func passThreshold(p float64) uint64 {
	switch {
	case p >= 1:
		return passScale
	case p <= 0:
		return 0
	}
	return uint64(p * passScale)
}
