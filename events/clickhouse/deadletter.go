package clickhouse

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/adserver/adserver/events"
)

// deadLetter appends rejected rows to a JSON-lines file, fsynced per
// write. A line is written before the row is acknowledged, so a crash
// may repeat a line but never lose one.
type deadLetter struct {
	path string
	now  func() time.Time
	f    *os.File
}

// DeadLetterEntry is one line of the dead-letter file.
type DeadLetterEntry struct {
	Time     time.Time         `json:"time"`
	Reason   string            `json:"reason"`
	Code     int32             `json:"code,omitempty"` // ClickHouse error code
	Table    string            `json:"table,omitempty"`
	Seq      uint64            `json:"seq"`
	Event    *events.Event     `json:"event,omitempty"`
	Decision *events.Decision  `json:"decision,omitempty"`
	Payload  string            `json:"payload,omitempty"` // base64 log payload when undecodable
	Extra    map[string]string `json:"extra,omitempty"`
}

func (d *deadLetter) write(e *DeadLetterEntry) error {
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("clickhouse shipper: cannot open dead-letter file: %w", err)
		}
		d.f = f
	}
	e.Time = d.now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("clickhouse shipper: cannot encode dead-letter entry: %w", err)
	}
	b = append(b, '\n')
	if _, err := d.f.Write(b); err != nil {
		return fmt.Errorf("clickhouse shipper: cannot write dead-letter file: %w", err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("clickhouse shipper: cannot sync dead-letter file: %w", err)
	}
	return nil
}

func (d *deadLetter) writeRow(r *row, cause error) error {
	e := &DeadLetterEntry{Reason: cause.Error(), Seq: r.seq}
	var exc *chgo.Exception
	if errors.As(cause, &exc) {
		e.Code = exc.Code
		e.Reason = exc.Message
	}
	switch r.kind {
	case events.KindEvent:
		e.Table, e.Event = "events", &r.ev
	case events.KindDecision:
		e.Table, e.Decision = "decisions", r.dec
	}
	return d.write(e)
}

func (d *deadLetter) writeRecord(rec *events.Record, reason string) error {
	return d.write(&DeadLetterEntry{Reason: reason, Seq: rec.Seq, Payload: base64.StdEncoding.EncodeToString(rec.Payload)})
}

func (d *deadLetter) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
