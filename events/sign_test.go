package events

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testSigner(t testing.TB, keys ...string) *Signer {
	t.Helper()
	if len(keys) == 0 {
		keys = []string{"k1:0123456789abcdef-secret"}
	}
	s, err := NewSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return testNow }
	return s
}

func sampleBeacon() Beacon {
	return Beacon{
		Type: TypeImpression, AuctionID: "auc-7f3a", SlotID: "s1", AdvertiserID: "adv-1",
		CampaignID: "c-1", CreativeID: "cr-1", PlacementID: "p-1", PublisherID: "pub 1&2",
		Country: "KR", UserID: "u=1", Charge: ChargeCPM, PriceMicros: 1_230_000,
	}
}

func parseQuery(t testing.TB, raw []byte) url.Values {
	t.Helper()
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatalf("generated URL does not parse: %v: %s", err, raw)
	}
	return u.Query()
}

func TestSignRoundTrip(t *testing.T) {
	s := testSigner(t)
	for _, b := range []Beacon{
		sampleBeacon(),
		{Type: TypeClick, AuctionID: "a", SlotID: "s", AdvertiserID: "ad", CampaignID: "c", CreativeID: "cr",
			Redirect: "https://example.com/landing?x=1&y=${Z}", Charge: ChargeCPC, PriceMicros: 80_000, Test: true},
		{Type: TypeConversion, AuctionID: "a", SlotID: "s", AdvertiserID: "ad", CampaignID: "c", CreativeID: "cr"},
	} {
		raw := s.AppendURL(nil, "https://ads.example/v1/t/imp", &b)
		got, err := s.Verify(URLValues(parseQuery(t, raw)), testNow.Add(time.Minute))
		if err != nil {
			t.Fatalf("Verify(%s): %v", raw, err)
		}
		b.Issued = testNow
		if got != b {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
		}
	}
}

func TestSignBaseWithQuery(t *testing.T) {
	s := testSigner(t)
	b := sampleBeacon()
	raw := s.AppendURL(nil, "https://x/t?z=1", &b)
	if !strings.HasPrefix(string(raw), "https://x/t?z=1&e=i&") {
		t.Fatalf("%s", raw)
	}
}

func TestSignTamperedFieldsRejected(t *testing.T) {
	s := testSigner(t)
	b := sampleBeacon()
	b.Redirect = "https://example.com/"
	raw := s.AppendURL(nil, "https://x/t", &b)
	q := parseQuery(t, raw)
	for name := range q {
		if name == paramKey {
			continue
		}
		t.Run(name, func(t *testing.T) {
			tq := url.Values{}
			for k, v := range q {
				tq[k] = append([]string(nil), v...)
			}
			v := tq.Get(name)
			switch name {
			case paramType:
				v = "c"
			case paramSig:
				v = "A" + v[1:]
				if v == q.Get(name) {
					v = "B" + v[1:]
				}
			case paramIssued, paramPrice, paramCharge:
				v = string(rune(v[0]+1)) + v[1:]
				if name == paramCharge {
					v = "2"
				}
			default:
				v += "x"
			}
			tq.Set(name, v)
			_, err := s.Verify(URLValues(tq), testNow)
			if r := ReasonOf(err); r != ReasonForged {
				t.Fatalf("tampered %s=%q: reason %q (%v), want forged", name, v, r, err)
			}
		})
	}
	// Dropping an optional signed field or adding one is tampering too.
	for _, name := range []string{paramPublisher, paramUser, paramRedirect, paramCharge} {
		tq := parseQuery(t, raw)
		tq.Del(name)
		if r := ReasonOf(mustFail(s.Verify(URLValues(tq), testNow))); r != ReasonForged {
			t.Fatalf("dropped %s: %q", name, r)
		}
	}
	tq := parseQuery(t, raw)
	tq.Set(paramTest, "1")
	if r := ReasonOf(mustFail(s.Verify(URLValues(tq), testNow))); r != ReasonForged {
		t.Fatalf("added t=1: %q", r)
	}
}

func mustFail(_ Beacon, err error) error { return err }

func TestSignExpiry(t *testing.T) {
	s := testSigner(t)
	b := sampleBeacon()
	q := URLValues(parseQuery(t, s.AppendURL(nil, "/t", &b)))
	if _, err := s.Verify(q, testNow.Add(DefaultMaxAge)); err != nil {
		t.Fatalf("at MaxAge: %v", err)
	}
	if r := ReasonOf(mustFail(s.Verify(q, testNow.Add(DefaultMaxAge+time.Second)))); r != ReasonExpired {
		t.Fatalf("after MaxAge: %q", r)
	}
	if r := ReasonOf(mustFail(s.Verify(q, testNow.Add(-time.Hour)))); r != ReasonMalformed {
		t.Fatalf("from the future: %q", r)
	}
	s.MaxAge = time.Minute
	if r := ReasonOf(mustFail(s.Verify(q, testNow.Add(2*time.Minute)))); r != ReasonExpired {
		t.Fatalf("custom MaxAge: %q", r)
	}
	// Conversions get the attribution window.
	b.Type = TypeConversion
	q = URLValues(parseQuery(t, s.AppendURL(nil, "/t", &b)))
	if _, err := s.Verify(q, testNow.Add(7*24*time.Hour)); err != nil {
		t.Fatalf("conversion after a week: %v", err)
	}
	if r := ReasonOf(mustFail(s.Verify(q, testNow.Add(DefaultConversionMaxAge+time.Second)))); r != ReasonExpired {
		t.Fatalf("conversion after window: %q", r)
	}
}

func TestSignKeyRotation(t *testing.T) {
	old := testSigner(t, "k1:0123456789abcdef-old")
	rotated := testSigner(t, "k2:0123456789abcdef-new", "k1:0123456789abcdef-old")
	retired := testSigner(t, "k2:0123456789abcdef-new")
	b := sampleBeacon()
	q1 := URLValues(parseQuery(t, old.AppendURL(nil, "/t", &b)))
	q2 := URLValues(parseQuery(t, rotated.AppendURL(nil, "/t", &b)))
	if q2.Peek(paramKey)[0] != 'k' || string(q2.Peek(paramKey)) != "k2" {
		t.Fatalf("rotated signer signs with %s", q2.Peek(paramKey))
	}
	for name, c := range map[string]struct {
		s    *Signer
		q    URLValues
		want Reason
	}{
		"old key, old signer":      {old, q1, ""},
		"old key, rotated signer":  {rotated, q1, ""},
		"new key, rotated signer":  {rotated, q2, ""},
		"new key, retired signer":  {retired, q2, ""},
		"old key, retired signer":  {retired, q1, ReasonUnknownKey},
		"new key, old-only signer": {old, q2, ReasonUnknownKey},
	} {
		_, err := c.s.Verify(c.q, testNow)
		if ReasonOf(err) != c.want {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// Same id, different secret: forged.
	imposter := testSigner(t, "k1:0123456789abcdef-evil")
	if r := ReasonOf(mustFail(imposter.Verify(q1, testNow))); r != ReasonForged {
		t.Fatalf("imposter: %q", r)
	}
}

func TestNewSignerErrors(t *testing.T) {
	for _, keys := range [][]string{nil, {"k:short"}, {"bad id:0123456789abcdef"}, {"a:0123456789abcdef", "a:0123456789abcdefg"}} {
		if _, err := NewSigner(keys...); err == nil {
			t.Errorf("NewSigner(%q) succeeded", keys)
		}
	}
	s, err := ParseSigner(" k2:0123456789abcdef-2 , k1:0123456789abcdef-1")
	if err != nil || len(s.keys) != 2 || s.keys[0].id != "k2" {
		t.Fatalf("ParseSigner: %v", err)
	}
	s, err = NewSigner("0123456789abcdef")
	if err != nil || s.keys[0].id != "0" {
		t.Fatalf("bare secret: %v", err)
	}
}

func TestOpenRTBPriceMacro(t *testing.T) {
	s := testSigner(t)
	b := sampleBeacon()
	b.Type = TypeBilling
	b.PriceMicros = 0
	b.CeilingMicros = 2_500_000
	raw := s.AppendURL(nil, "https://x/t", &b)
	if !strings.Contains(string(raw), "&ceil=2500000&price=${AUCTION_PRICE}&") {
		t.Fatalf("macro not left in place: %s", raw)
	}
	fill := func(price string) URLValues {
		return URLValues(parseQuery(t, []byte(strings.Replace(string(raw), AuctionPriceMacro, price, 1))))
	}
	for price, want := range map[string]int64{"1.23": 1_230_000, "2.5": 2_500_000, "0.0000019": 1, "2": 2_000_000, "0": 0} {
		got, err := s.Verify(fill(price), testNow)
		if err != nil {
			t.Fatalf("price %s: %v", price, err)
		}
		if got.PriceMicros != want || got.CostMicros() != want/1000 {
			t.Fatalf("price %s: %d micros, cost %d", price, got.PriceMicros, got.CostMicros())
		}
	}
	for price, want := range map[string]Reason{
		"2.500001": ReasonPriceAboveCeiling, "3": ReasonPriceAboveCeiling, "99999999": ReasonMalformed, "1000": ReasonPriceAboveCeiling,
		"-1": ReasonMalformed, "1e3": ReasonMalformed, "": ReasonMalformed, "1.": ReasonMalformed, ".5": ReasonMalformed,
		"NaN": ReasonMalformed,
	} {
		if r := ReasonOf(mustFail(s.Verify(fill(price), testNow))); r != want {
			t.Errorf("price %q: %q, want %q", price, r, want)
		}
	}
	if r := ReasonOf(mustFail(s.Verify(URLValues(parseQuery(t, raw)), testNow))); r != ReasonMalformed {
		t.Fatalf("unsubstituted macro: %q", r)
	}
	// The ceiling is signed.
	q := fill("1.0")
	q2 := url.Values(q)
	q2.Set(paramCeiling, "9000000")
	if r := ReasonOf(mustFail(s.Verify(q, testNow))); r != ReasonForged {
		t.Fatalf("raised ceiling: %q", r)
	}
	// A loss notice may come without a price.
	b.Type = TypeLoss
	raw = s.AppendURL(nil, "https://x/t", &b)
	if got, err := s.Verify(URLValues(parseQuery(t, raw)), testNow); err != nil || got.PriceMicros != 0 {
		t.Fatalf("loss without price: %v %+v", err, got)
	}
}

func TestVerifyMalformed(t *testing.T) {
	s := testSigner(t)
	for _, q := range []string{"", "k=k1", "k=k1&sig=zz", "k=nokey&sig=x", "e=i&a=1&k=k1&sig=AAAAAAAAAAAAAAAAAAAAAA"} {
		v, _ := url.ParseQuery(q)
		_, err := s.Verify(URLValues(v), testNow)
		if r := ReasonOf(err); r != ReasonMalformed && r != ReasonUnknownKey {
			t.Errorf("%q: %v", q, err)
		}
	}
}

func TestAppendURLAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	s := testSigner(t)
	b := sampleBeacon()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(200, func() { buf = s.AppendURL(buf[:0], "https://ads.example/v1/t/imp", &b) }); n != 0 {
		t.Fatalf("AppendURL allocates %v times", n)
	}
	args := toFakeArgs(parseQuery(t, buf))
	if n := testing.AllocsPerRun(200, func() {
		if _, err := s.Verify(args, testNow); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Fatalf("Verify allocates %v times", n)
	}
}

// fakeArgs is an allocation-free Args, like *fasthttp.Args.
type fakeArgs map[string][]byte

func (a fakeArgs) Peek(k string) []byte { return a[k] }

func toFakeArgs(v url.Values) fakeArgs {
	a := fakeArgs{}
	for k := range v {
		a[k] = []byte(v.Get(k))
	}
	return a
}

func FuzzVerify(f *testing.F) {
	s := testSigner(f)
	b := sampleBeacon()
	f.Add(string(s.AppendQuery(nil, &b)))
	b.CeilingMicros = 5_000_000
	f.Add(strings.Replace(string(s.AppendQuery(nil, &b)), AuctionPriceMacro, "1.5", 1))
	f.Add("e=i&k=k1&sig=AAAAAAAAAAAAAAAAAAAAAA&ts=1")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := s.Verify(URLValues(q), testNow)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		// Anything accepted must re-sign to the same signature: Verify
		// accepted only what the key signed.
		again := s.AppendQuery(nil, &got)
		q2, _ := url.ParseQuery(string(again))
		if q2.Get(paramSig) != q.Get(paramSig) {
			t.Fatalf("accepted %q but it re-signs differently", raw)
		}
	})
}

func TestConversionBeacon(t *testing.T) {
	s := testSigner(t)
	click := sampleBeacon()
	click.Type, click.Charge, click.Redirect, click.Issued = TypeClick, ChargeCPC, "https://l/", testNow
	conv := click.Conversion()
	q := URLValues(parseQuery(t, s.AppendURL(nil, "/v1/t/conv", &conv)))
	got, err := s.Verify(q, testNow.Add(10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != TypeConversion || got.CostMicros() != 0 || got.Redirect != "" ||
		got.EventID() != EventID(click.AuctionID, click.SlotID, TypeConversion) {
		t.Fatalf("%+v", got)
	}
}
