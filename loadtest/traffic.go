package loadtest

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Bounds of the fixed-size arrays in Request.
const (
	maxSlots    = 4
	maxSegments = 8
	maxKeywords = 6
)

// Request is one generated ad request, held as indices into the Generator's
// tables so that generating one allocates nothing. Encode it with
// Generator.AppendAdRequest or Generator.AppendOpenRTB. The zero value is
// ready to be filled by Generator.Next; reuse it across requests.
type Request struct {
	Worker uint32
	Seq    uint64
	User   uint64 // Zipf rank: 0 is the heaviest user
	// Placement indexes Scenario.Placements; Slots index that placement's sizes.
	Placement int
	NSlots    int
	Slots     [maxSlots]int
	Country   int // index into Scenario.Countries
	Region    int // index into the country's regions
	Language  int // index into the generator's language dictionary
	Device    int // index into Scenario.Devices
	OS        int // index into the device's os list
	Browser   int // index into the os's browsers
	NSeg      int
	Segs      [maxSegments]int // indices into Scenario.Segments.Values
	NKw       int
	Kws       [maxKeywords]int // indices into Scenario.Keywords.Values
	IP        [4]byte
}

// Generator turns a Scenario into requests. It is immutable after
// NewGenerator and safe for concurrent use; each goroutine needs its own
// Source.
type Generator struct {
	sc   *Scenario
	seed uint64

	placements  choice
	pl          []genPlacement
	countries   choice
	co          []genCountry
	devices     choice
	dev         []genDevice
	langs       []string // language dictionary
	langQ       [][]byte // quoted
	segments    choice
	segQ        [][]byte
	keywords    choice
	kwQ         [][]byte
	kwRaw       [][]byte // unquoted, escaped for use inside a JSON string
	sizeShare   map[[2]int]float64
	ortbDevType []int
}

type genPlacement struct {
	id, pub, domain, page []byte // quoted JSON strings
	floor                 []byte // decimal text
	sizes                 [][2]int
}

type genCountry struct {
	value, iso3 []byte
	regions     choice
	region      [][]byte // quoted region values
	city        [][]byte // quoted cities
	langs       choice
	lang        []int // language dictionary indices
}

type genDevice struct {
	value []byte
	os    choice
	oses  []genOS
}

type genOS struct {
	value    []byte
	browsers choice
	ua       [][]byte
}

// choice picks an index with probability proportional to its weight.
type choice struct{ cum []float64 }

func newChoice(n int, weight func(i int) float64) choice {
	c := choice{cum: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += weight(i)
		c.cum[i] = sum
	}
	for i := range c.cum {
		c.cum[i] /= sum
	}
	return c
}

// pick maps u in [0, 1) to an index.
func (c choice) pick(u float64) int {
	i := sort.SearchFloat64s(c.cum, u)
	for i < len(c.cum)-1 && c.cum[i] <= u {
		i++
	}
	if i >= len(c.cum) {
		i = len(c.cum) - 1
	}
	return i
}

func quote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// NewGenerator compiles a validated scenario. The same scenario and seed give
// the same request stream for each worker number.
func NewGenerator(sc *Scenario, seed uint64) *Generator {
	g := &Generator{sc: sc, seed: seed, sizeShare: make(map[[2]int]float64)}
	g.placements = newChoice(len(sc.Placements), func(i int) float64 { return sc.Placements[i].Weight })
	for i, p := range sc.Placements {
		g.pl = append(g.pl, genPlacement{
			id: quote(p.ID), pub: quote(p.PublisherID), domain: quote(p.Domain),
			page:  quote("https://" + p.Domain + "/"),
			floor: strconv.AppendFloat(nil, p.Floor, 'f', -1, 64), sizes: p.Sizes,
		})
		share := g.placements.cum[i]
		if i > 0 {
			share -= g.placements.cum[i-1]
		}
		// Requests carry min(MaxSlots, len(sizes)) slots on average about
		// one; estimate the share with one uniformly chosen size.
		for _, s := range p.Sizes {
			g.sizeShare[s] += share / float64(len(p.Sizes))
		}
	}
	langIdx := map[string]int{}
	g.countries = newChoice(len(sc.Countries), func(i int) float64 { return sc.Countries[i].Weight })
	for _, c := range sc.Countries {
		gc := genCountry{value: quote(c.Value), iso3: quote(iso3(c))}
		gc.regions = newChoice(len(c.Regions), func(i int) float64 { return c.Regions[i].Weight })
		for _, r := range c.Regions {
			gc.region = append(gc.region, quote(r.Value))
			gc.city = append(gc.city, quote(r.City))
		}
		gc.langs = newChoice(len(c.Languages), func(i int) float64 { return c.Languages[i].Weight })
		for _, l := range c.Languages {
			k, ok := langIdx[l.Value]
			if !ok {
				k = len(g.langs)
				langIdx[l.Value] = k
				g.langs = append(g.langs, l.Value)
				g.langQ = append(g.langQ, quote(l.Value))
			}
			gc.lang = append(gc.lang, k)
		}
		g.co = append(g.co, gc)
	}
	g.devices = newChoice(len(sc.Devices), func(i int) float64 { return sc.Devices[i].Weight })
	for _, d := range sc.Devices {
		gd := genDevice{value: quote(d.Value)}
		gd.os = newChoice(len(d.OS), func(i int) float64 { return d.OS[i].Weight })
		for _, o := range d.OS {
			gos := genOS{value: quote(o.Value)}
			gos.browsers = newChoice(len(o.Browsers), func(i int) float64 { return o.Browsers[i].Weight })
			for _, b := range o.Browsers {
				gos.ua = append(gos.ua, quote(b.UA))
			}
			gd.oses = append(gd.oses, gos)
		}
		g.dev = append(g.dev, gd)
		g.ortbDevType = append(g.ortbDevType, ortbDeviceType(d.Value))
	}
	if vs := sc.Segments.Values; len(vs) > 0 {
		g.segments = newChoice(len(vs), func(i int) float64 { return vs[i].Weight })
		for _, v := range vs {
			g.segQ = append(g.segQ, quote(v.Value))
		}
	}
	if vs := sc.Keywords.Values; len(vs) > 0 {
		g.keywords = newChoice(len(vs), func(i int) float64 { return vs[i].Weight })
		for _, v := range vs {
			q := quote(v.Value)
			g.kwQ = append(g.kwQ, q)
			g.kwRaw = append(g.kwRaw, q[1:len(q)-1])
		}
	}
	return g
}

// Scenario returns the scenario the generator was built from.
func (g *Generator) Scenario() *Scenario { return g.sc }

// Source is one goroutine's random stream. Not safe for concurrent use.
type Source struct {
	rng    *rand.Rand
	zipf   *rand.Zipf
	worker uint32
	seq    uint64
}

// NewSource returns the random stream of one worker; the same generator seed
// and worker number give the same requests.
func (g *Generator) NewSource(worker int) *Source {
	rng := rand.New(rand.NewPCG(g.seed, uint64(worker)+0x5eed))
	u := g.sc.Users
	return &Source{
		rng:    rng,
		zipf:   rand.NewZipf(rng, u.ZipfS, u.ZipfV, u.Count-1),
		worker: uint32(worker),
	}
}

// Float64 returns a uniform number in [0, 1) from the source's stream (for
// the caller's own decisions, such as whether to send a beacon).
func (s *Source) Float64() float64 { return s.rng.Float64() }

// splitmix is SplitMix64: a tiny deterministic stream, used to derive a
// user's stable attributes from the user id without allocating.
type splitmix struct{ s uint64 }

func (m *splitmix) next() uint64 {
	m.s += 0x9e3779b97f4a7c15
	z := m.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (m *splitmix) float() float64 { return float64(m.next()>>11) / (1 << 53) }

// Next fills r with the next request of src. A user's country, region,
// language, device, OS, browser, segments and IP depend only on the user
// (and the generator seed), so a returning user looks the same; placement,
// slots and keywords are drawn per request.
func (g *Generator) Next(src *Source, r *Request) {
	r.Worker, r.Seq = src.worker, src.seq
	src.seq++
	r.User = src.zipf.Uint64()
	us := splitmix{s: g.seed ^ (r.User+1)*0xd1342543de82ef95}
	r.Country = g.countries.pick(us.float())
	c := &g.co[r.Country]
	r.Region = c.regions.pick(us.float())
	r.Language = c.lang[c.langs.pick(us.float())]
	r.Device = g.devices.pick(us.float())
	d := &g.dev[r.Device]
	r.OS = d.os.pick(us.float())
	r.Browser = d.oses[r.OS].browsers.pick(us.float())
	ip := us.next()
	r.IP = [4]byte{byte(1 + ip%223), byte(ip >> 8), byte(ip >> 16), byte(1 + (ip>>24)%254)}
	seg := g.sc.Segments
	r.NSeg = pickDistinct(r.Segs[:], g.segments, seg.Min+int(us.next()%uint64(seg.Max-seg.Min+1)), us.float)

	r.Placement = g.placements.pick(src.rng.Float64())
	sizes := g.pl[r.Placement].sizes
	n := min(max(g.sc.MaxSlots, 1), len(sizes))
	if n > 1 {
		n = 1 + src.rng.IntN(n)
	}
	first := src.rng.IntN(len(sizes))
	r.NSlots = n
	for i := range n {
		r.Slots[i] = (first + i) % len(sizes)
	}
	kw := g.sc.Keywords
	r.NKw = pickDistinct(r.Kws[:], g.keywords, kw.Min+src.rng.IntN(kw.Max-kw.Min+1), src.rng.Float64)
}

// pickDistinct draws up to n distinct indices by weight into dst.
func pickDistinct(dst []int, c choice, n int, u func() float64) int {
	if len(c.cum) == 0 {
		return 0
	}
	n = min(n, len(dst), len(c.cum))
	k := 0
outer:
	for try := 0; k < n && try < 4*n; try++ {
		v := c.pick(u())
		for _, have := range dst[:k] {
			if have == v {
				continue outer
			}
		}
		dst[k] = v
		k++
	}
	return k
}

// Attrs calls f with each targeting attribute of r and its value, spelled as
// campaign targeting does (lower case; sizes "300x250"). Not for hot paths.
func (g *Generator) Attrs(r *Request, f func(attr, value string)) {
	sc := g.sc
	p := sc.Placements[r.Placement]
	f("placement", strings.ToLower(p.ID))
	f("publisher", strings.ToLower(p.PublisherID))
	f("domain", strings.ToLower(p.Domain))
	for _, s := range r.Slots[:r.NSlots] {
		f("size", strconv.Itoa(p.Sizes[s][0])+"x"+strconv.Itoa(p.Sizes[s][1]))
	}
	c := sc.Countries[r.Country]
	f("country", strings.ToLower(c.Value))
	f("region", strings.ToLower(c.Regions[r.Region].Value))
	f("city", strings.ToLower(c.Regions[r.Region].City))
	f("language", strings.ToLower(g.langs[r.Language]))
	d := sc.Devices[r.Device]
	f("device_type", strings.ToLower(d.Value))
	f("os", strings.ToLower(d.OS[r.OS].Value))
	f("browser", strings.ToLower(d.OS[r.OS].Browsers[r.Browser].Value))
	for _, s := range r.Segs[:r.NSeg] {
		f("segment", strings.ToLower(sc.Segments.Values[s].Value))
	}
	for _, k := range r.Kws[:r.NKw] {
		f("keyword", strings.ToLower(sc.Keywords.Values[k].Value))
	}
}

// ortbDeviceType maps a device type to OpenRTB 2.6 device.devicetype.
func ortbDeviceType(v string) int {
	switch strings.ToLower(v) {
	case "mobile", "phone":
		return 4
	case "tablet":
		return 5
	case "desktop", "pc":
		return 2
	case "ctv", "tv":
		return 3
	}
	return 6
}

// iso3 returns the country's alpha-3 code (OpenRTB geo.country).
func iso3(c CountrySpec) string {
	if c.ISO3 != "" {
		return c.ISO3
	}
	if v, ok := alpha3[strings.ToUpper(c.Value)]; ok {
		return v
	}
	return c.Value
}

var alpha3 = map[string]string{
	"US": "USA", "KR": "KOR", "JP": "JPN", "DE": "DEU", "GB": "GBR", "FR": "FRA", "BR": "BRA",
	"IN": "IND", "CN": "CHN", "CA": "CAN", "AU": "AUS", "ES": "ESP", "IT": "ITA", "MX": "MEX",
}
