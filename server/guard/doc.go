// Package guard protects the serving path from abusive traffic: it flags
// users seen from too many distinct IPs or devices in a short window
// (Abuse), and rate-limits requests per key, such as a client IP or a
// placement id (Limiter).
//
// Both engines know nothing about HTTP: the serving handlers call them once
// per request and decide the answer (serve without charging; 429). Every
// method takes the request's time, so tests drive them with an injected
// clock.
//
// Both are built for the ad-request hot path: a call takes one of 64 to 128
// shard mutexes chosen by a hash of the key (never a global lock), hashes
// strings with hash/maphash, and allocates nothing. Memory is fixed at
// construction: each engine is a set-associative table (8 slots per bucket)
// sized from its config, and a new key takes the place of the
// least-recently-useful entry in its bucket. Keys are identified by a
// 64-bit hash, so two keys could in principle share an entry; the odds are
// about one in 2^64 per pair.
//
// State is per node: a user spread over several nodes by the load balancer
// is counted on each node separately (route by user id to count it once).
//
// All methods are safe for concurrent use. A nil *Abuse flags nobody and a
// nil *Limiter allows everything, so a disabled guard needs no special case
// in the caller.
package guard
