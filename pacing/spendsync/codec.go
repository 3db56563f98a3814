package spendsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
)

// Version is the value of the "v" field of the records this package
// writes; records of another version are skipped and counted.
const Version = 1

// AppendKey appends the record key of d to dst: "campaign/node" for a
// spend record, "node" for a heartbeat. Keying by campaign and node keeps
// each node's records for a campaign in order in one partition, spreads
// campaigns over partitions, and lets a compacted topic keep exactly the
// newest record of every (campaign, node).
func AppendKey(dst []byte, d *pacing.Delta) []byte {
	if d.Campaign != "" {
		dst = append(dst, d.Campaign...)
		dst = append(dst, '/')
	}
	return append(dst, d.Node...)
}

// AppendValue appends the JSON value of d to dst. Amounts are integer
// micros; a ceiling of -1 (none) is left out. A heartbeat carries only v,
// node, seq and ts:
//
//	{"v":1,"node":"n1","campaign":"c-1","day":"2026-11-24","day_spend_micros":1200000,
//	 "delta_micros":2000,"total_spend_micros":5400000,"reserved_micros":3000,
//	 "day_ceiling_micros":1250000,"total_ceiling_micros":5450000,
//	 "seq":1795000000000123,"ts":"2026-11-24T10:00:01.5Z"}
func AppendValue(dst []byte, d *pacing.Delta) []byte {
	dst = append(dst, `{"v":1,"node":`...)
	dst = strconv.AppendQuote(dst, d.Node)
	if d.Campaign != "" {
		dst = append(dst, `,"campaign":`...)
		dst = strconv.AppendQuote(dst, d.Campaign)
		dst = append(dst, `,"day":"`...)
		dst = d.Day.AppendText(dst)
		dst = append(dst, `","day_spend_micros":`...)
		dst = strconv.AppendInt(dst, int64(d.DaySpend), 10)
		dst = append(dst, `,"delta_micros":`...)
		dst = strconv.AppendInt(dst, int64(d.Delta), 10)
		dst = append(dst, `,"total_spend_micros":`...)
		dst = strconv.AppendInt(dst, int64(d.Total), 10)
		dst = append(dst, `,"reserved_micros":`...)
		dst = strconv.AppendInt(dst, int64(d.Reserved), 10)
		if d.DayCeiling >= 0 {
			dst = append(dst, `,"day_ceiling_micros":`...)
			dst = strconv.AppendInt(dst, int64(d.DayCeiling), 10)
		}
		if d.TotalCeiling >= 0 {
			dst = append(dst, `,"total_ceiling_micros":`...)
			dst = strconv.AppendInt(dst, int64(d.TotalCeiling), 10)
		}
	}
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, d.Seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = d.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// wireRecord is the value as encoding/json reads it: pointers mark the
// required fields that are present.
type wireRecord struct {
	V        *int64  `json:"v"`
	Node     *string `json:"node"`
	Campaign *string `json:"campaign"`
	Day      *string `json:"day"`
	DaySpend *int64  `json:"day_spend_micros"`
	Delta    *int64  `json:"delta_micros"`
	Total    *int64  `json:"total_spend_micros"`
	Reserved *int64  `json:"reserved_micros"`
	DayCeil  *int64  `json:"day_ceiling_micros"`
	TotCeil  *int64  `json:"total_ceiling_micros"`
	Seq      *uint64 `json:"seq"`
	TS       *string `json:"ts"`
}

// Field bits of record.has, in the order of flatFields.
const (
	hasV = 1 << iota
	hasNode
	hasCampaign
	hasDay
	hasDaySpend
	hasDelta
	hasTotal
	hasReserved
	hasSeq
	hasTS
	hasDayCeil
	hasTotCeil
)

// record is a parsed value before validation.
type record struct {
	has                                 uint16
	v, daySpend, delta, total, reserved int64
	dayCeil, totCeil                    int64
	seq                                 uint64
	node, campaign, day, ts             string
}

func (r *record) fromWire(w *wireRecord) {
	set := func(bit uint16, ok bool) {
		if ok {
			r.has |= bit
		}
	}
	set(hasV, w.V != nil)
	set(hasNode, w.Node != nil)
	set(hasCampaign, w.Campaign != nil)
	set(hasDay, w.Day != nil)
	set(hasDaySpend, w.DaySpend != nil)
	set(hasDelta, w.Delta != nil)
	set(hasTotal, w.Total != nil)
	set(hasReserved, w.Reserved != nil)
	set(hasSeq, w.Seq != nil)
	set(hasTS, w.TS != nil)
	set(hasDayCeil, w.DayCeil != nil)
	set(hasTotCeil, w.TotCeil != nil)
	deref(&r.v, w.V)
	deref(&r.daySpend, w.DaySpend)
	deref(&r.delta, w.Delta)
	deref(&r.total, w.Total)
	deref(&r.reserved, w.Reserved)
	deref(&r.dayCeil, w.DayCeil)
	deref(&r.totCeil, w.TotCeil)
	deref(&r.seq, w.Seq)
	deref(&r.node, w.Node)
	deref(&r.campaign, w.Campaign)
	deref(&r.day, w.Day)
	deref(&r.ts, w.TS)
}

func deref[T any](dst *T, p *T) {
	if p != nil {
		*dst = *p
	}
}

var errMalformed = errors.New("malformed spend record")

// Decode parses a record value into d. It rejects, with a reason, anything
// that is not a complete version-1 record: unknown versions, missing or
// negative amounts, a bad day or time, an empty or invalid node id. Unknown
// fields are ignored so that later versions can add some. The ceilings are
// optional (records of nodes that predate them have none): a missing one
// decodes as -1.
func Decode(value []byte, d *pacing.Delta) error {
	var r record
	if !decodeFlat(value, &r) {
		// Not the flat form this package writes: let encoding/json decide,
		// and explain.
		r = record{}
		var w wireRecord
		dec := json.NewDecoder(bytes.NewReader(value))
		if err := dec.Decode(&w); err != nil {
			return fmt.Errorf("%w: %v", errMalformed, err)
		}
		if dec.More() {
			return fmt.Errorf("%w: trailing data after the JSON object", errMalformed)
		}
		r.fromWire(&w)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case r.has&hasV == 0:
		return bad("missing v")
	case r.v != Version:
		return bad("unsupported version %d", r.v)
	case r.node == "" || len(r.node) > 128 || strings.ContainsAny(r.node, "/ \t\n"):
		return bad("invalid node %q", r.node)
	case r.seq == 0:
		return bad("missing seq")
	}
	ts, err := time.Parse(time.RFC3339Nano, r.ts)
	if err != nil {
		return bad("invalid ts %q", r.ts)
	}
	*d = pacing.Delta{Node: r.node, Seq: r.seq, Time: ts, DayCeiling: -1, TotalCeiling: -1}
	if r.campaign == "" {
		if r.has&(hasDay|hasDaySpend|hasTotal|hasDayCeil|hasTotCeil) != 0 {
			return bad("a heartbeat (no campaign) with spend fields")
		}
		return nil
	}
	day, err := pacing.ParseDay(r.day)
	switch {
	case err != nil:
		return bad("invalid day %q", r.day)
	case r.has&hasDaySpend == 0 || r.daySpend < 0:
		return bad("missing or negative day_spend_micros")
	case r.has&hasTotal == 0 || r.total < r.daySpend:
		return bad("missing total_spend_micros, or less than day_spend_micros")
	case r.reserved < 0:
		return bad("negative reserved_micros")
	case r.dayCeil < 0 || r.totCeil < 0:
		return bad("negative day_ceiling_micros or total_ceiling_micros")
	}
	d.Campaign, d.Day = r.campaign, day
	d.DaySpend, d.Delta = campaign.Micros(r.daySpend), campaign.Micros(r.delta)
	d.Total, d.Reserved = campaign.Micros(r.total), campaign.Micros(r.reserved)
	if r.has&hasDayCeil != 0 {
		d.DayCeiling = campaign.Micros(r.dayCeil)
	}
	if r.has&hasTotCeil != 0 {
		d.TotalCeiling = campaign.Micros(r.totCeil)
	}
	return nil
}
