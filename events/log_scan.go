package events

import "hash/crc32"

// scanner finds valid records in a buffer. A record that fails its checks
// starts a corrupt region; the scanner then slides forward one byte at a
// time until a valid record starts (resynchronisation), so one flipped
// byte costs one record, not the rest of the segment.
type scanner struct {
	buf []byte
	i   int // next unparsed byte
	// atLimit is set when buf ends where readable data ends; a record cut
	// short there is corrupt (or a torn tail), not incomplete.
	atLimit bool
	lastSeq uint64

	skipping  bool // inside a corrupt region
	skipBytes int
	regions   int // finished corrupt regions not yet taken
	badBytes  int
}

type rawRecord struct {
	seq     uint64
	payload []byte
}

type recStatus uint8

const (
	recOK recStatus = iota
	recShort
	recBad
)

// resyncWindow bounds how far above the last good seq a record found
// while resynchronising may be (2^50 ns is 13 days of restarts).
const resyncWindow = 1 << 50

// next returns the next valid record. It returns false at the end of the
// buffer: when !atLimit more data may complete the record at s.i.
func (s *scanner) next() (rawRecord, bool) {
	for s.i < len(s.buf) {
		st, n, seq := checkRecord(s.buf[s.i:], s.lastSeq, s.skipping)
		switch {
		case st == recOK:
			if s.skipping {
				s.regions++
				s.badBytes += s.skipBytes
				s.skipping, s.skipBytes = false, 0
			}
			s.lastSeq = seq
			rec := rawRecord{seq: seq, payload: s.buf[s.i+hdrLen : s.i+n : s.i+n]}
			s.i += n
			return rec, true
		case st == recShort && !s.atLimit:
			return rawRecord{}, false
		default:
			s.skipping = true
			s.skipBytes++
			s.i++
		}
	}
	return rawRecord{}, false
}

// takeBad returns and resets the corrupt regions found so far; final also
// closes a region still open at the end of the data.
func (s *scanner) takeBad(final bool) (regions, bytes int) {
	if final && s.skipping {
		s.regions++
		s.badBytes += s.skipBytes
		s.skipping, s.skipBytes = false, 0
	}
	regions, bytes = s.regions, s.badBytes
	s.regions, s.badBytes = 0, 0
	return regions, bytes
}

// checkRecord validates the record at the start of b. While resyncing
// (strict), a plausible sequence number is required before the CRC is
// even computed, which keeps the byte-by-byte search cheap.
func checkRecord(b []byte, lastSeq uint64, strict bool) (st recStatus, n int, seq uint64) {
	if len(b) < hdrLen {
		return recShort, 0, 0
	}
	ln := le32(b)
	if ln == 0 || ln > MaxRecord {
		return recBad, 0, 0
	}
	seq = le64b(b[8:])
	if seq == 0 || strict && lastSeq != 0 && (seq <= lastSeq || seq-lastSeq > resyncWindow) {
		return recBad, 0, 0
	}
	n = hdrLen + int(ln)
	if len(b) < n {
		return recShort, 0, 0
	}
	crc := crc32.Checksum(b[hdrLen:n], castagnoli)
	if crc32.Update(crc, castagnoli, b[8:16]) != le32(b[4:]) {
		return recBad, 0, 0
	}
	return recOK, n, seq
}
