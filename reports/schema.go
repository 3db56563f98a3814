package reports

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// dimRollupsVersion is the schema version (events/clickhouse.Migrate)
// that adds the backfilled rollups and their gap log.
const dimRollupsVersion = 2

// gapsTable is the gap log of the backfill: hours in which the rollups of
// version 2 lack what reached rollup_hourly during the upgrade.
const gapsTable = "rollup_backfill_gaps"

// rollupState is what a Handler knows of the rollups of version 2.
type rollupState struct {
	// ready: version 2 is recorded, so its rollups are complete outside
	// the gap hours, and the gap log is final.
	ready bool
	// gaps are the starts (unix seconds) of the gap hours, ascending.
	gaps []int64
	// read is when this was read.
	read time.Time
}

// schemaRecheck is how long a Handler trusts "version 2 not recorded yet"
// before asking again. Once recorded it never asks again: a version is
// never taken back, and the gap log stops growing before it is recorded
// (what is added later is a harmless superset).
const schemaRecheck = 10 * time.Second

// rollupState returns what is known of the rollups of version 2, reading
// it from ClickHouse when not known yet. On failure the report reads the
// older rollups, which are always exact.
func (h *Handler) rollupState(ctx context.Context) *rollupState {
	if s := h.rollups.Load(); s != nil && (s.ready || time.Since(s.read) < schemaRecheck) {
		return s
	}
	s, err := readRollupState(ctx, h.cfg.Conn, h.cfg.Database)
	if err != nil {
		h.cfg.Logger.Warn("cannot read the schema version; reports read rollup_hourly", "err", err)
		return &rollupState{}
	}
	h.rollups.Store(s)
	return s
}

func readRollupState(ctx context.Context, conn driver.Conn, db string) (*rollupState, error) {
	s := &rollupState{read: time.Now()}
	var v uint32
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM `"+db+"`.schema_migrations").Scan(&v); err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	if v < dimRollupsVersion {
		return s, nil
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT toInt64(toUInt32(hour)) FROM `"+db+"`."+gapsTable)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", gapsTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", gapsTable, err)
		}
		s.gaps = append(s.gaps, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", gapsTable, err)
	}
	sort.Slice(s.gaps, func(i, j int) bool { return s.gaps[i] < s.gaps[j] })
	s.ready = true
	return s, nil
}

// gapRanges returns the gap hours in [from, to) (unix seconds) as ranges
// [start, end), consecutive hours merged.
func (s *rollupState) gapRanges(from, to int64) [][2]int64 {
	if s == nil {
		return nil
	}
	var out [][2]int64
	i := sort.Search(len(s.gaps), func(i int) bool { return s.gaps[i]+3600 > from })
	for ; i < len(s.gaps) && s.gaps[i] < to; i++ {
		g := s.gaps[i]
		if n := len(out); n > 0 && out[n-1][1] >= g {
			out[n-1][1] = max(out[n-1][1], g+3600)
			continue
		}
		out = append(out, [2]int64{g, g + 3600})
	}
	return out
}
