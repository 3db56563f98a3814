package events

import (
	"crypto/hmac"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// sigEncoding rejects non-canonical encodings, so a signature has exactly
// one accepted spelling.
var sigEncoding = base64.RawURLEncoding.Strict()

// stringParams are the signed string parameters, in Beacon field order.
var stringParams = [...]struct {
	name     string
	required bool
	max      int
}{
	{paramAuction, true, maxFieldLen},
	{paramSlot, true, maxFieldLen},
	{paramAdvertiser, true, maxFieldLen},
	{paramCampaign, true, maxFieldLen},
	{paramCreative, true, maxFieldLen},
	{paramPlacement, false, maxFieldLen},
	{paramPublisher, false, maxFieldLen},
	{paramCountry, false, maxFieldLen},
	{paramUser, false, maxFieldLen},
	{paramRedirect, false, maxRedirect},
}

func (b *Beacon) stringFields() [len(stringParams)]*string {
	return [...]*string{&b.AuctionID, &b.SlotID, &b.AdvertiserID, &b.CampaignID,
		&b.CreativeID, &b.PlacementID, &b.PublisherID, &b.Country, &b.UserID, &b.Redirect}
}

// Verify checks the tracking-URL arguments args and returns the beacon they
// carry. now is the verification time (pass the request time).
//
// Errors are *VerifyError with a Reason: malformed (a parameter is missing
// or unparsable), unknown_key, forged (the signature does not match),
// expired (older than MaxAge, ConversionMaxAge for conversions), or
// price_above_ceiling (OpenRTB mode). Every rejection is counted in
// adserver_beacon_rejected_total.
//
// The returned Beacon's strings are copied out of args (one allocation), so
// they stay valid after the request is released.
func (s *Signer) Verify(args Args, now time.Time) (Beacon, error) {
	var b Beacon
	err := s.verify(&b, args, now)
	if err != nil {
		countReject(err.Reason)
		return Beacon{}, err
	}
	beaconsVerified.Inc()
	return b, nil
}

func countReject(r Reason) {
	switch r {
	case ReasonMalformed:
		rejectMalformed.Inc()
	case ReasonUnknownKey:
		rejectUnknownKey.Inc()
	case ReasonForged:
		rejectForged.Inc()
	case ReasonExpired:
		rejectExpired.Inc()
	case ReasonPriceAboveCeiling:
		rejectAboveCeil.Inc()
	}
}

func malformed(field, msg string) *VerifyError {
	return &VerifyError{Reason: ReasonMalformed, Field: field, Message: msg}
}

func (s *Signer) verify(b *Beacon, args Args, now time.Time) *VerifyError {
	keyID := args.Peek(paramKey)
	if len(keyID) == 0 {
		return malformed(paramKey, "missing")
	}
	var key *signKey
	for _, k := range s.keys {
		if k.id == string(keyID) {
			key = k
			break
		}
	}
	if key == nil {
		return &VerifyError{Reason: ReasonUnknownKey, Field: paramKey, Message: "no key with this id"}
	}
	sig := args.Peek(paramSig)
	var want [sigLen + 2]byte
	if len(sig) != base64.RawURLEncoding.EncodedLen(sigLen) {
		return malformed(paramSig, "not a signature")
	}
	if n, err := sigEncoding.Decode(want[:], sig); err != nil || n != sigLen {
		return malformed(paramSig, "not a signature")
	}

	t := args.Peek(paramType)
	if len(t) != 1 || typeFromCode(t[0]) == TypeUnknown {
		return malformed(paramType, "unknown event type")
	}
	b.Type = typeFromCode(t[0])
	if err := copyStrings(b, args); err != nil {
		return err
	}
	if m := args.Peek(paramCharge); len(m) > 0 {
		if len(m) != 1 || m[0] < '1' || m[0] > '2' {
			return malformed(paramCharge, "unknown charge model")
		}
		b.Charge = ChargeModel(m[0] - '0')
	}
	ceil, hasCeil := args.Peek(paramCeiling), false
	if len(ceil) > 0 {
		v, err := strconv.ParseInt(string(ceil), 10, 64)
		if err != nil || v <= 0 {
			return malformed(paramCeiling, "not a positive integer")
		}
		b.CeilingMicros, hasCeil = v, true
	}
	if pr := args.Peek(paramPrice); len(pr) > 0 {
		if hasCeil {
			return malformed(paramPrice, "both a signed price and a ceiling")
		}
		v, err := strconv.ParseInt(string(pr), 10, 64)
		if err != nil || v < 0 {
			return malformed(paramPrice, "not a non-negative integer")
		}
		b.PriceMicros = v
	} else if !hasCeil {
		return malformed(paramPrice, "missing")
	}
	if tv := args.Peek(paramTest); len(tv) > 0 {
		if string(tv) != "1" {
			return malformed(paramTest, "must be 1 when present")
		}
		b.Test = true
	}
	issued, err := strconv.ParseInt(string(args.Peek(paramIssued)), 10, 64)
	if err != nil || issued <= 0 {
		return malformed(paramIssued, "not a unix time")
	}

	st := key.pool.Get().(*macState)
	ok := hmac.Equal(st.mac(b, issued, key.id), want[:sigLen])
	key.pool.Put(st)
	if !ok {
		return &VerifyError{Reason: ReasonForged, Field: paramSig, Message: "signature mismatch"}
	}

	b.Issued = time.Unix(issued, 0).UTC()
	age := now.Sub(b.Issued)
	if age > s.maxAge(b.Type) {
		return &VerifyError{Reason: ReasonExpired, Field: paramIssued, Message: "issued " + age.Truncate(time.Second).String() + " ago"}
	}
	if -age > s.maxSkew() {
		return malformed(paramIssued, "issued in the future")
	}
	if hasCeil {
		return b.fillExchangePrice(args.Peek(priceParam))
	}
	return nil
}

// fillExchangePrice parses the exchange-substituted price of an OpenRTB
// notice and checks it against the signed ceiling. A loss notice may come
// without a price.
func (b *Beacon) fillExchangePrice(p []byte) *VerifyError {
	if len(p) == 0 || string(p) == AuctionPriceMacro {
		if b.Type == TypeLoss {
			return nil
		}
		return malformed(priceParam, "auction price macro not substituted")
	}
	v, ok := ParsePriceMicros(p)
	if !ok {
		return malformed(priceParam, "not a decimal price")
	}
	if v > b.CeilingMicros {
		return &VerifyError{Reason: ReasonPriceAboveCeiling, Field: priceParam, Message: "price exceeds the signed ceiling"}
	}
	b.PriceMicros = v
	return nil
}

// copyStrings copies the string parameters into b with a single
// allocation: they share one backing string.
func copyStrings(b *Beacon, args Args) *VerifyError {
	var vals [len(stringParams)][]byte
	total := 0
	for i, p := range stringParams {
		v := args.Peek(p.name)
		if len(v) > p.max {
			return malformed(p.name, "too long")
		}
		if p.required && len(v) == 0 {
			return malformed(p.name, "missing")
		}
		vals[i] = v
		total += len(v)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, v := range vals {
		sb.Write(v)
	}
	all := sb.String()
	off := 0
	for i, f := range b.stringFields() {
		*f = all[off : off+len(vals[i])]
		off += len(vals[i])
	}
	return nil
}
