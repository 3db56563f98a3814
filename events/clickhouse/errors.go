package clickhouse

import (
	"errors"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
)

type errKind uint8

const (
	// errKindConnection: the network, a timeout, or anything unknown.
	// Retried; what landed is checked first.
	errKindConnection errKind = iota
	// errKindTransient: the server refused for now (memory, too many
	// parts, read-only replica, ...). Retried.
	errKindTransient
	// errKindSchema: the tables do not match (missing, altered, no
	// access). Migrate runs again, then retried.
	errKindSchema
	// errKindInvalid: the server rejected the data itself. The batch is
	// bisected and single bad rows are dead-lettered.
	errKindInvalid
)

// errClientColumn wraps clickhouse-go refusing our values for a column:
// the table's type differs from what this code writes.
var errClientColumn = errors.New("column type mismatch with the ClickHouse table")

// ClickHouse error codes (src/Common/ErrorCodes.cpp) that say nothing
// about the rows of the insert.
var (
	transientCodes = map[int32]bool{
		3: true, 32: true, 159: true, 164: true, 173: true, 202: true, 203: true, 209: true,
		210: true, 216: true, 225: true, 236: true, 241: true, 242: true, 243: true, 252: true,
		279: true, 319: true, 394: true, 425: true, 999: true, 1000: true,
	}
	schemaCodes = map[int32]bool{
		8: true, 10: true, 16: true, 47: true, 53: true, 60: true, 81: true, 192: true,
		193: true, 194: true, 497: true, 516: true,
	}
)

func classify(err error) errKind {
	if errors.Is(err, errClientColumn) {
		return errKindSchema
	}
	var exc *chgo.Exception
	if !errors.As(err, &exc) {
		return errKindConnection
	}
	switch {
	case transientCodes[exc.Code]:
		return errKindTransient
	case schemaCodes[exc.Code]:
		return errKindSchema
	}
	return errKindInvalid
}
