package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Tracking URL query parameters. Every one except priceParam is signed.
const (
	paramType       = "e"
	paramAuction    = "a"
	paramSlot       = "s"
	paramAdvertiser = "ad"
	paramCampaign   = "c"
	paramCreative   = "cr"
	paramPlacement  = "p"
	paramPublisher  = "pub"
	paramCountry    = "co"
	paramUser       = "u"
	paramRedirect   = "r"
	paramCharge     = "m"
	paramPrice      = "pr"   // signed clearing price, micros
	paramCeiling    = "ceil" // signed bid ceiling, micros (OpenRTB mode)
	priceParam      = "price"
	paramTest       = "t"
	paramIssued     = "ts"
	paramKey        = "k"
	paramSig        = "sig"

	// AuctionPriceMacro is the OpenRTB macro the exchange replaces with the
	// clearing price in currency units.
	AuctionPriceMacro = "${AUCTION_PRICE}"

	sigLen       = 16 // bytes of HMAC-SHA256 kept in the URL
	maxKeyID     = 16
	minSecretLen = 16
	maxFieldLen  = 256
	maxRedirect  = 2048
	maxPriceUnit = 1_000_000 // a CPM above a million currency units is malformed
)

// Default signer settings.
const (
	DefaultMaxAge           = 24 * time.Hour
	DefaultConversionMaxAge = 30 * 24 * time.Hour
	DefaultMaxSkew          = 5 * time.Minute
)

var (
	beaconsVerified  = metrics.NewCounter(`adserver_beacon_verified_total`)
	rejectMalformed  = metrics.NewCounter(`adserver_beacon_rejected_total{reason="malformed"}`)
	rejectUnknownKey = metrics.NewCounter(`adserver_beacon_rejected_total{reason="unknown_key"}`)
	rejectForged     = metrics.NewCounter(`adserver_beacon_rejected_total{reason="forged"}`)
	rejectExpired    = metrics.NewCounter(`adserver_beacon_rejected_total{reason="expired"}`)
	rejectAboveCeil  = metrics.NewCounter(`adserver_beacon_rejected_total{reason="price_above_ceiling"}`)
)

// Signer signs and verifies tracking URLs with HMAC-SHA256. The first key
// signs; every key verifies, so keys rotate by prepending a new key, waiting
// MaxAge, then dropping the old one.
//
// Configure the exported fields before first use; a Signer is then safe for
// concurrent use.
type Signer struct {
	// MaxAge is how long a beacon stays valid after issue. Default 24h.
	MaxAge time.Duration
	// ConversionMaxAge is the validity of conversion beacons (the
	// attribution window). Default 30 days.
	ConversionMaxAge time.Duration
	// MaxSkew is how far in the future an issue time may lie (clock skew
	// between nodes). Default 5m.
	MaxSkew time.Duration
	// Now is the clock used for issue times. Default time.Now.
	Now func() time.Time

	keys []*signKey // keys[0] signs
}

type signKey struct {
	id   string
	pool sync.Pool // *macState
}

type macState struct {
	h   hash.Hash
	msg []byte
	sum [sha256.Size]byte
}

// NewSigner builds a Signer from keys written "id:secret" (an entry without
// a colon gets id "0"). The first key signs. Ids are 1-16 characters of
// [A-Za-z0-9_-]; secrets are at least 16 bytes.
func NewSigner(keys ...string) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("signer: no signing key configured")
	}
	s := &Signer{}
	seen := map[string]bool{}
	for i, k := range keys {
		id, secret, ok := strings.Cut(k, ":")
		if !ok {
			id, secret = "0", k
		}
		if err := validKeyID(id); err != nil {
			return nil, fmt.Errorf("signer: key #%d: %w", i+1, err)
		}
		if len(secret) < minSecretLen {
			return nil, fmt.Errorf("signer: key %q: secret must be at least %d bytes, got %d", id, minSecretLen, len(secret))
		}
		if seen[id] {
			return nil, fmt.Errorf("signer: duplicate key id %q", id)
		}
		seen[id] = true
		sk := &signKey{id: id}
		sec := []byte(secret)
		sk.pool.New = func() any { return &macState{h: hmac.New(sha256.New, sec)} }
		s.keys = append(s.keys, sk)
	}
	return s, nil
}

// ParseSigner builds a Signer from a comma-separated key list, the format
// of the -signing-key flag: "k2:newsecret...,k1:oldsecret...".
func ParseSigner(list string) (*Signer, error) {
	var keys []string
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return NewSigner(keys...)
}

func validKeyID(id string) error {
	if id == "" || len(id) > maxKeyID {
		return fmt.Errorf("key id %q must be 1-%d characters", id, maxKeyID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q may contain only letters, digits, '_' and '-'", id)
		}
	}
	return nil
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Signer) maxAge(t Type) time.Duration {
	if t == TypeConversion {
		if s.ConversionMaxAge > 0 {
			return s.ConversionMaxAge
		}
		return DefaultConversionMaxAge
	}
	if s.MaxAge > 0 {
		return s.MaxAge
	}
	return DefaultMaxAge
}

func (s *Signer) maxSkew() time.Duration {
	if s.MaxSkew > 0 {
		return s.MaxSkew
	}
	return DefaultMaxSkew
}

// AppendURL appends base, a '?' (or '&' when base already has a query) and
// the signed query string for b to dst, and returns the extended buffer.
// It does not allocate once dst has room. b.Type must be valid.
func (s *Signer) AppendURL(dst []byte, base string, b *Beacon) []byte {
	dst = append(dst, base...)
	if strings.IndexByte(base, '?') >= 0 {
		dst = append(dst, '&')
	} else {
		dst = append(dst, '?')
	}
	return s.AppendQuery(dst, b)
}

// AppendQuery appends the signed query string for b (without '?') to dst.
func (s *Signer) AppendQuery(dst []byte, b *Beacon) []byte {
	if !b.Type.Valid() {
		panic("BUG: events: AppendURL with invalid beacon type")
	}
	issued := b.Issued.Unix()
	if b.Issued.IsZero() {
		issued = s.now().Unix()
	}
	dst = append(dst, paramType+"="...)
	dst = append(dst, typeCodes[b.Type])
	dst = appendParam(dst, paramAuction, b.AuctionID)
	dst = appendParam(dst, paramSlot, b.SlotID)
	dst = appendParam(dst, paramAdvertiser, b.AdvertiserID)
	dst = appendParam(dst, paramCampaign, b.CampaignID)
	dst = appendParam(dst, paramCreative, b.CreativeID)
	dst = appendParam(dst, paramPlacement, b.PlacementID)
	dst = appendOptParam(dst, paramPublisher, b.PublisherID)
	dst = appendParam(dst, paramCountry, b.Country)
	dst = appendOptParam(dst, paramUser, b.UserID)
	dst = appendOptParam(dst, paramRedirect, b.Redirect)
	if b.Charge != ChargeNone {
		dst = append(dst, "&"+paramCharge+"="...)
		dst = strconv.AppendUint(dst, uint64(b.Charge), 10)
	}
	if b.CeilingMicros > 0 {
		dst = append(dst, "&"+paramCeiling+"="...)
		dst = strconv.AppendInt(dst, b.CeilingMicros, 10)
		dst = append(dst, "&"+priceParam+"="+AuctionPriceMacro...)
	} else {
		dst = append(dst, "&"+paramPrice+"="...)
		dst = strconv.AppendInt(dst, b.PriceMicros, 10)
	}
	if b.Test {
		dst = append(dst, "&"+paramTest+"=1"...)
	}
	dst = append(dst, "&"+paramIssued+"="...)
	dst = strconv.AppendInt(dst, issued, 10)
	k := s.keys[0]
	dst = appendParam(dst, paramKey, k.id)
	dst = append(dst, "&"+paramSig+"="...)
	st := k.pool.Get().(*macState)
	sum := st.mac(b, issued, k.id)
	dst = base64.RawURLEncoding.AppendEncode(dst, sum)
	k.pool.Put(st)
	return dst
}

// mac computes the truncated HMAC of the canonical encoding of b. The
// result aliases st and is valid until st is reused.
func (st *macState) mac(b *Beacon, issued int64, keyID string) []byte {
	m := st.msg[:0]
	m = append(m, "adsv1"...)
	m = append(m, typeCodes[b.Type%typeEnd])
	for _, f := range [...]string{b.AuctionID, b.SlotID, b.AdvertiserID, b.CampaignID,
		b.CreativeID, b.PlacementID, b.PublisherID, b.Country, b.UserID, b.Redirect, keyID} {
		m = appendString(m, f)
	}
	var flags byte
	if b.Test {
		flags |= 1
	}
	amount := b.PriceMicros
	if b.CeilingMicros > 0 {
		flags |= 2
		amount = b.CeilingMicros
	}
	m = append(m, byte(b.Charge), flags)
	m = binary.BigEndian.AppendUint64(m, uint64(amount))
	m = binary.BigEndian.AppendUint64(m, uint64(issued))
	st.msg = m
	st.h.Reset()
	st.h.Write(m)
	return st.h.Sum(st.sum[:0])[:sigLen]
}

func appendParam(dst []byte, name, v string) []byte {
	dst = append(dst, '&')
	dst = append(dst, name...)
	dst = append(dst, '=')
	return appendQueryEscape(dst, v)
}

func appendOptParam(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendParam(dst, name, v)
}

const hexDigits = "0123456789ABCDEF"

// appendQueryEscape percent-encodes every byte outside RFC 3986's
// unreserved set.
func appendQueryEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// ParsePriceMicros parses a decimal amount in currency units, as an
// exchange substitutes for ${AUCTION_PRICE} (e.g. "1.23"), into micros
// without floating point. Digits beyond the sixth decimal are truncated.
func ParsePriceMicros(s []byte) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var whole, frac int64
	i := 0
	for ; i < len(s) && s[i] != '.'; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		whole = whole*10 + int64(c-'0')
		if whole > maxPriceUnit {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	if i < len(s) {
		i++ // '.'
		if i == len(s) {
			return 0, false
		}
		digits := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if digits < 6 {
				frac = frac*10 + int64(c-'0')
				digits++
			}
		}
		for ; digits < 6; digits++ {
			frac *= 10
		}
	}
	return whole*1_000_000 + frac, true
}
