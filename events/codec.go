package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Kind tells what a log record payload holds.
type Kind uint8

// Record kinds, the first byte of every payload.
const (
	KindInvalid  Kind = 0
	KindEvent    Kind = 1
	KindDecision Kind = 2
)

// codecVersion is the second byte of every payload.
const codecVersion = 1

const (
	eventStrings    = 10
	decisionStrings = 10
	flagTest        = 1 << 0
	// maxStringLen bounds every encoded string so a corrupt length cannot
	// ask for gigabytes.
	maxStringLen = 1 << 16
)

var (
	errShort   = errors.New("truncated")
	errKind    = errors.New("unexpected record kind")
	errVersion = errors.New("unsupported encoding version")
	errLen     = errors.New("string length out of range")
	errTrail   = errors.New("trailing bytes")
	errType    = errors.New("invalid event type")
)

// PayloadKind returns the kind of an encoded payload, KindInvalid if b is
// empty or unknown.
func PayloadKind(b []byte) Kind {
	if len(b) < 2 || b[1] != codecVersion {
		return KindInvalid
	}
	switch k := Kind(b[0]); k {
	case KindEvent, KindDecision:
		return k
	}
	return KindInvalid
}

// AppendBinary appends the compact binary encoding of e to dst and returns
// the extended buffer. Seq is not encoded: the Log stores it in the record
// header and readers put it back. Strings longer than 65535 bytes are
// truncated.
//
// Layout: kind, version, type, flags, id[16], varint time (unix µs),
// varint price, varint cost, 10 uvarint string lengths, then the strings
// back to back (so Unmarshal copies them with one allocation).
func (e *Event) AppendBinary(dst []byte) []byte {
	var flags byte
	if e.Test {
		flags |= flagTest
	}
	dst = append(dst, byte(KindEvent), codecVersion, byte(e.Type), flags)
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendVarint(dst, timeToMicros(e.Time))
	dst = binary.AppendVarint(dst, e.PriceMicros)
	dst = binary.AppendVarint(dst, e.CostMicros)
	strs := [eventStrings]*string{&e.NodeID, &e.AuctionID, &e.SlotID, &e.AdvertiserID,
		&e.CampaignID, &e.CreativeID, &e.PlacementID, &e.PublisherID, &e.Country, &e.UserID}
	return appendStrings(dst, strs[:])
}

// Unmarshal decodes a payload written by AppendBinary into e, replacing all
// its fields except Seq. The strings in e are copied out of src (one
// allocation), so src may be reused afterwards.
func (e *Event) Unmarshal(src []byte) error {
	if len(src) < 20 {
		return fmt.Errorf("cannot decode event: %w", errShort)
	}
	if Kind(src[0]) != KindEvent {
		return fmt.Errorf("cannot decode event: %w (%d)", errKind, src[0])
	}
	if src[1] != codecVersion {
		return fmt.Errorf("cannot decode event: %w (%d)", errVersion, src[1])
	}
	seq := e.Seq
	*e = Event{Seq: seq}
	e.Type = Type(src[2])
	if !e.Type.Valid() {
		return fmt.Errorf("cannot decode event: %w (%d)", errType, src[2])
	}
	e.Test = src[3]&flagTest != 0
	copy(e.ID[:], src[4:20])
	d := decoder{b: src[20:]}
	e.Time = microsToTime(d.varint())
	e.PriceMicros = d.varint()
	e.CostMicros = d.varint()
	strs := [eventStrings]*string{&e.NodeID, &e.AuctionID, &e.SlotID, &e.AdvertiserID,
		&e.CampaignID, &e.CreativeID, &e.PlacementID, &e.PublisherID, &e.Country, &e.UserID}
	if err := d.strings(strs[:]); err != nil {
		return fmt.Errorf("cannot decode event: %w", err)
	}
	return nil
}

// AppendBinary appends the compact binary encoding of d to dst, like
// Event.AppendBinary.
func (d *Decision) AppendBinary(dst []byte) []byte {
	var flags byte
	if d.Test {
		flags |= flagTest
	}
	dst = append(dst, byte(KindDecision), codecVersion, flags)
	dst = binary.AppendVarint(dst, timeToMicros(d.Time))
	dst = binary.AppendVarint(dst, int64(d.Candidates))
	dst = binary.AppendVarint(dst, int64(d.Bids))
	dst = binary.AppendVarint(dst, d.BidMicros)
	dst = binary.AppendVarint(dst, d.PriceMicros)
	dst = binary.AppendVarint(dst, d.FloorMicros)
	dst = binary.AppendVarint(dst, d.LatencyMicros)
	strs := [decisionStrings]*string{&d.NodeID, &d.AuctionID, &d.SlotID, &d.PlacementID,
		&d.PublisherID, &d.Country, &d.WinnerAdvertiserID, &d.WinnerCampaignID,
		&d.WinnerCreativeID, &d.NoFillReason}
	return appendStrings(dst, strs[:])
}

// Unmarshal decodes a payload written by Decision.AppendBinary, replacing
// all fields except Seq; strings are copied.
func (d *Decision) Unmarshal(src []byte) error {
	if len(src) < 3 {
		return fmt.Errorf("cannot decode decision: %w", errShort)
	}
	if Kind(src[0]) != KindDecision {
		return fmt.Errorf("cannot decode decision: %w (%d)", errKind, src[0])
	}
	if src[1] != codecVersion {
		return fmt.Errorf("cannot decode decision: %w (%d)", errVersion, src[1])
	}
	seq := d.Seq
	*d = Decision{Seq: seq}
	d.Test = src[2]&flagTest != 0
	dec := decoder{b: src[3:]}
	d.Time = microsToTime(dec.varint())
	d.Candidates = int32(dec.varint())
	d.Bids = int32(dec.varint())
	d.BidMicros = dec.varint()
	d.PriceMicros = dec.varint()
	d.FloorMicros = dec.varint()
	d.LatencyMicros = dec.varint()
	strs := [decisionStrings]*string{&d.NodeID, &d.AuctionID, &d.SlotID, &d.PlacementID,
		&d.PublisherID, &d.Country, &d.WinnerAdvertiserID, &d.WinnerCampaignID,
		&d.WinnerCreativeID, &d.NoFillReason}
	if err := dec.strings(strs[:]); err != nil {
		return fmt.Errorf("cannot decode decision: %w", err)
	}
	return nil
}

func appendStrings(dst []byte, strs []*string) []byte {
	for _, s := range strs {
		dst = binary.AppendUvarint(dst, uint64(min(len(*s), maxStringLen-1)))
	}
	for _, s := range strs {
		v := *s
		if len(v) >= maxStringLen {
			v = v[:maxStringLen-1]
		}
		dst = append(dst, v...)
	}
	return dst
}

// appendString appends a uvarint length and s (used for hashing and
// signing, where the encoding must be unambiguous).
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func timeToMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func microsToTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// decoder reads varints from b; the first failure sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// strings reads len(dst) lengths, then one blob holding them all, which it
// copies into a single string that dst's strings share.
func (d *decoder) strings(dst []*string) error {
	var lens [eventStrings + decisionStrings]int
	total := 0
	for i := range dst {
		n := d.uvarint()
		if n >= maxStringLen {
			return errLen
		}
		lens[i] = int(n)
		total += int(n)
	}
	if d.err != nil {
		return d.err
	}
	if total > len(d.b) {
		return errShort
	}
	if total < len(d.b) {
		return errTrail
	}
	blob := string(d.b)
	off := 0
	for i, p := range dst {
		*p = blob[off : off+lens[i]]
		off += lens[i]
	}
	return nil
}
