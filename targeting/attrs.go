package targeting

import (
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/adserver/adserver/campaign"
)

// Attrs is a request's assignment of attribute values, the input of
// [Index.Query], [Index.Explain] and [Scan]. Any attribute may carry several
// values (segment and keyword usually do). hour and weekday are not set by
// the caller: each query derives them from its time, in each campaign's
// own time zone; values added for them are ignored.
//
// Attrs also caches what it resolved against the last index it was queried
// with, so that querying the same request again (say once per slot, with
// only size changed through Set) costs little.
//
// The zero value is ready to use. An Attrs is not safe for concurrent use.
// Acquire one with [AcquireAttrs] and give it back with [ReleaseAttrs], or
// keep one per goroutine and Reset it per request.
type Attrs struct {
	_ noCopy

	vals  [campaign.NumAttrs][]string
	arena []byte // normalized copies of values; see Add

	// Resolution cache, valid for the index rix (values) and tix (time).
	rix   *Index
	dirty uint32 // attributes whose values changed since resolution
	res   [campaign.NumAttrs][][]plist
	tix   *Index
	tfrom int64 // time keys hold for unix seconds in [tfrom, tto)
	tto   int64
	tres  [2][][]plist // hour, weekday keys

	// gen counts changes of the values; Explain caches the index's
	// matches for (xix, xnow, xgen) in xset.
	gen  uint64
	xix  *Index
	xnow time.Time
	xgen uint64
	xset map[*campaign.Campaign]bool

	// Query scratch.
	kb     []byte
	curs   []cursor
	cur    []uint32 // cap(cur) == cap(groups) == cap(curs)
	groups []group
	ubits  []uint64 // union bitmaps of one walk
	acc    []uint64 // level bitmaps of one count
	// strategy, for tests, makes Query use walk (strategyWalk) or count
	// (strategyCount) for every size; 0 lets countCheaper choose.
	strategy uint8
	bounds   [2*campaign.NumAttrs + 3]int
	hits     []uint32
	multi    []uint32
}

// MaxValues is how many values of one attribute a request is matched with
// (segments and keywords are the only attributes with more than a few).
// It bounds the work a request can ask for: a 64 KiB body could list
// thousands, and each one costs a duplicate check and a posting list.
const MaxValues = 256

var attrsPool sync.Pool

// AcquireAttrs returns an empty Attrs from a pool.
func AcquireAttrs() *Attrs {
	if a, ok := attrsPool.Get().(*Attrs); ok {
		return a
	}
	return new(Attrs)
}

// ReleaseAttrs resets a and returns it to the pool. a must not be used
// afterwards, nor any string obtained from its Values. The pooled Attrs
// keeps its cache (the hour and weekday keys of the last snapshot it was
// used with), which may keep that snapshot reachable until the Attrs is
// reused or the pool is emptied by the garbage collector.
func ReleaseAttrs(a *Attrs) {
	a.Reset()
	a.xix, a.xset = nil, nil
	attrsPool.Put(a)
}

// Reset removes every value, keeping the buffers.
func (a *Attrs) Reset() {
	for i := range a.vals {
		if len(a.vals[i]) > 0 {
			a.vals[i] = a.vals[i][:0]
			a.dirty |= 1 << i
		}
	}
	a.arena = a.arena[:0]
	a.gen++
}

// Add adds a value of attribute attr. It normalizes the value the way
// campaign.NormalizeValue does (trimmed, lower-case), without allocating
// for ASCII input: Add either keeps value itself (already canonical) or a
// copy in an internal buffer. So value's bytes must not change until the
// next Reset (mind strings made without copying from a request buffer).
// Empty values, duplicates, unknown attributes and the derived attributes
// hour and weekday are ignored, and so are the values of an attribute past
// its first MaxValues.
func (a *Attrs) Add(attr campaign.AttrID, value string) {
	if int(attr) >= campaign.NumAttrs || timeAttr(attr) || len(a.vals[attr]) >= MaxValues {
		return
	}
	v := a.normalize(attr, value)
	if v == "" {
		return
	}
	for _, have := range a.vals[attr] {
		if have == v {
			return
		}
	}
	a.vals[attr] = append(a.vals[attr], v)
	a.dirty |= 1 << attr
	a.gen++
}

// Set replaces attr's values with value (none if value is empty).
func (a *Attrs) Set(attr campaign.AttrID, value string) {
	a.Clear(attr)
	a.Add(attr, value)
}

// Clear removes attr's values.
func (a *Attrs) Clear(attr campaign.AttrID) {
	if int(attr) < campaign.NumAttrs && len(a.vals[attr]) > 0 {
		a.vals[attr] = a.vals[attr][:0]
		a.dirty |= 1 << attr
		a.gen++
	}
}

// Values returns attr's normalized values. The slice and its strings are
// valid until the next Reset, Clear or Set of a.
func (a *Attrs) Values(attr campaign.AttrID) []string {
	if int(attr) >= campaign.NumAttrs {
		return nil
	}
	return a.vals[attr]
}

// normalize returns campaign.NormalizeValue(attr, v) for the attributes
// Add accepts, without allocating when v is ASCII.
func (a *Attrs) normalize(attr campaign.AttrID, v string) string {
	lo, hi := 0, len(v)
	for lo < hi && asciiSpace(v[lo]) {
		lo++
	}
	for hi > lo && asciiSpace(v[hi-1]) {
		hi--
	}
	v = v[lo:hi]
	upper := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return campaign.NormalizeValue(attr, v)
		}
		upper = upper || ('A' <= c && c <= 'Z')
	}
	if !upper || v == "" {
		return v
	}
	start := len(a.arena)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		a.arena = append(a.arena, c)
	}
	// The arena only grows until Reset; a reallocation leaves earlier
	// strings pointing into the old array, which they keep alive.
	b := a.arena[start:]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
