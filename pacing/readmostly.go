package pacing

import (
	"strings"
	"sync"
	"sync/atomic"
)

// readMostly is a string-keyed map for keys that are added rarely and read
// on every request: campaigns and placements. Reads of merged keys are one
// atomic load and a map lookup, without locks or allocation. New keys wait
// in a small pending map, read under a mutex, until the next merge copies
// them into a fresh immutable map; merges happen when pending grows past
// 1/16 of the merged map (amortized O(1) per key) and on every Tick.
type readMostly[V any] struct {
	m        atomic.Pointer[map[string]V] // immutable once stored
	npending atomic.Int64
	mu       sync.Mutex
	pending  map[string]V // guarded by mu
}

func (r *readMostly[V]) get(k string) (V, bool) {
	if m := r.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v, true
		}
	}
	if r.npending.Load() == 0 {
		var zero V
		return zero, false
	}
	r.mu.Lock()
	v, ok := r.pending[k]
	r.mu.Unlock()
	return v, ok
}

// getOrCreate returns the value of k, creating it with mk when absent. It
// copies k, which may alias a caller's buffer.
func (r *readMostly[V]) getOrCreate(k string, mk func(k string) V) V {
	if v, ok := r.get(k); ok {
		return v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	main := r.m.Load()
	if main != nil {
		if v, ok := (*main)[k]; ok {
			return v
		}
	}
	if v, ok := r.pending[k]; ok {
		return v
	}
	k = strings.Clone(k)
	v := mk(k)
	if r.pending == nil {
		r.pending = make(map[string]V)
	}
	r.pending[k] = v
	r.npending.Store(int64(len(r.pending)))
	n := 0
	if main != nil {
		n = len(*main)
	}
	if len(r.pending) >= max(16, n/16) {
		r.mergeLocked()
	}
	return v
}

func (r *readMostly[V]) merge() {
	if r.npending.Load() == 0 {
		return
	}
	r.mu.Lock()
	r.mergeLocked()
	r.mu.Unlock()
}

func (r *readMostly[V]) mergeLocked() {
	if len(r.pending) == 0 {
		return
	}
	old := r.m.Load()
	n := len(r.pending)
	if old != nil {
		n += len(*old)
	}
	m := make(map[string]V, n)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for k, v := range r.pending {
		m[k] = v
	}
	r.m.Store(&m)
	clear(r.pending)
	r.npending.Store(0)
}

// delete removes k. It copies the merged map: deletes are rare.
func (r *readMostly[V]) delete(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, k)
	r.npending.Store(int64(len(r.pending)))
	old := r.m.Load()
	if old == nil {
		return
	}
	if _, ok := (*old)[k]; !ok {
		return
	}
	m := make(map[string]V, len(*old))
	for key, v := range *old {
		if key != k {
			m[key] = v
		}
	}
	r.m.Store(&m)
}

// each calls fn for every key, merged and pending. fn must not call back
// into r.
func (r *readMostly[V]) each(fn func(k string, v V)) {
	r.merge()
	if m := r.m.Load(); m != nil {
		for k, v := range *m {
			fn(k, v)
		}
	}
}

func (r *readMostly[V]) len() int {
	n := int(r.npending.Load())
	if m := r.m.Load(); m != nil {
		n += len(*m)
	}
	return n
}
