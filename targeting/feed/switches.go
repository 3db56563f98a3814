package feed

// Kill switches (DESIGN.md section 3): the operators' serving, charging,
// pause and decision-log-sampling state, carried by the compacted topic
// adserver.control and applied by every node into its snapshot.
//
// # Records
//
// The state is a fold over the latest record of each key, in the order this
// node applied them, starting from the defaults (serving and charging on,
// nothing paused, decision_log_sample 0.01). The server writes one record
// per changed field, so that each field has exactly one key and the fold
// does not depend on order:
//
//	key                       value          meaning
//	serving                   true | false
//	charging                  true | false   false: beacons are recorded, budgets not charged
//	decision_log_sample       0 .. 1         share of decisions sent to the decision log
//	paused_campaigns/<id>     true | false   pause or unpause one campaign
//	paused_advertisers/<id>   true | false   pause or unpause every campaign of one advertiser
//
// An empty value (a tombstone) withdraws the key: the field falls back to
// its default unless another key sets it. Because each key's latest record
// is all that counts, a node that bootstraps from a compacted topic builds
// the same state as a node that saw every record. The server unpauses with
// the value false rather than a tombstone, so that the unpause also
// overrides a pause from a hand-written record (below); that leaves one
// small record per id ever unpaused. Any Kafka client can set a switch:
//
//	echo 'serving:false' | kcat -b 127.0.0.1:9092 -t adserver.control -P -K:
//	echo 'paused_campaigns/c-1:true' | kcat -b 127.0.0.1:9092 -t adserver.control -P -K:
//
// Hand-written records may also use any other key with a JSON object value
// shaped like the body of PUT /v1/switches (see [DecodeSwitchPatch]), or a
// field name as key with that field's JSON as value (key paused_campaigns,
// value ["c-1"]). Such a record is applied at its place in the order, so
// records of different keys naming the same field override one another by
// order; the topic is created with one partition so that order is the same
// on every node. Under compaction only the latest record of such a key
// survives, so write complete objects under one key rather than a series of
// patches.
//
// A record that does not parse (unknown key, wrong type, sample outside
// [0, 1], invalid id, object with unknown fields) is skipped and counted in
// adserver_feed_malformed_records_total{topic="adserver.control"}; the key's
// previous record stays in effect.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
)

// DefaultDecisionLogSample is the decision-log sampling rate until an
// operator sets one.
const DefaultDecisionLogSample = 0.01

// Switch field names: the JSON fields of GET /v1/switches and the record
// keys (or key prefixes, with "/<id>") on adserver.control.
const (
	SwitchServing           = "serving"
	SwitchCharging          = "charging"
	SwitchPausedAdvertisers = "paused_advertisers"
	SwitchPausedCampaigns   = "paused_campaigns"
	SwitchDecisionLogSample = "decision_log_sample"
)

// maxPauseList bounds the ids named by one list of one patch.
const maxPauseList = 10000

var defaultSwitches = &decision.Switches{
	Serving:           true,
	Charging:          true,
	PausedCampaigns:   map[string]bool{},
	PausedAdvertisers: map[string]bool{},
	DecisionLogSample: DefaultDecisionLogSample,
}

// DefaultSwitches returns the state before any switch is set: serving and
// charging on, nothing paused, sample 0.01. The result is shared: never
// modify it.
func DefaultSwitches() *decision.Switches { return defaultSwitches }

var (
	switchServing     = metrics.NewGauge(`adserver_switch_serving`, nil)
	switchCharging    = metrics.NewGauge(`adserver_switch_charging`, nil)
	switchPausedCamps = metrics.NewGauge(`adserver_switch_paused_campaigns`, nil)
	switchPausedAdvs  = metrics.NewGauge(`adserver_switch_paused_advertisers`, nil)
	switchSample      = metrics.NewGauge(`adserver_switch_decision_log_sample`, nil)
	switchApplied     = metrics.NewCounter(`adserver_switch_changes_applied_total`)
)

// The gauges show the defaults until the first control record applies, so
// that a cluster without any switch set does not read as switched off.
func init() { setSwitchGauges(defaultSwitches) }

// SwitchPatch is a partial update of the switches: nil and empty fields
// leave the state as it is. PausedCampaigns and PausedAdvertisers replace
// the whole set; the Pause and Unpause lists add or remove ids, and so
// compose with concurrent updates from other operators.
type SwitchPatch struct {
	Serving            *bool
	Charging           *bool
	DecisionLogSample  *float64
	PausedCampaigns    []string // replaces the set when non-nil (empty: none paused)
	PausedAdvertisers  []string // replaces the set when non-nil
	PauseCampaigns     []string
	UnpauseCampaigns   []string
	PauseAdvertisers   []string
	UnpauseAdvertisers []string
}

// patchFields lists the JSON fields a patch accepts, in answer order.
var patchFields = []string{
	SwitchServing, SwitchCharging, SwitchPausedAdvertisers, SwitchPausedCampaigns, SwitchDecisionLogSample,
	"pause_campaigns", "unpause_campaigns", "pause_advertisers", "unpause_advertisers",
}

// DecodeSwitchPatch parses the body of PUT /v1/switches: a JSON object
// with any of serving and charging (booleans), decision_log_sample (a
// number in [0, 1]), paused_campaigns and paused_advertisers (arrays of ids
// that replace the set), and pause_campaigns, unpause_campaigns,
// pause_advertisers, unpause_advertisers (arrays of ids to add or remove).
// Unknown fields, null, wrong types and out-of-range values are errors; the
// error is a [campaign.Errors] with the field path of every problem.
func DecodeSwitchPatch(b []byte) (*SwitchPatch, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	var raw map[string]json.RawMessage
	if err := d.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, campaign.Errors{{Code: "wrong_type", Message: "the switches must be a JSON object, not " + te.Value}}
		}
		return nil, campaign.Errors{{Code: "invalid_json", Message: "malformed JSON: " + err.Error()}}
	}
	if d.More() {
		return nil, campaign.Errors{{Code: "invalid_json", Message: "trailing data after the JSON object"}}
	}
	if raw == nil {
		return nil, campaign.Errors{{Code: "wrong_type", Message: "the switches must be a JSON object, not null"}}
	}
	p := &SwitchPatch{}
	var errs campaign.Errors
	keys := slices.Sorted(maps.Keys(raw))
	for _, k := range keys {
		if err := p.setField(k, raw[k]); err != nil {
			errs = append(errs, *err)
		}
	}
	if len(errs) == 0 {
		errs = p.check()
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// setField decodes one field of a patch.
func (p *SwitchPatch) setField(name string, v json.RawMessage) *campaign.FieldError {
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) && slices.Contains(patchFields, name) {
		return &campaign.FieldError{Field: name, Code: "wrong_type", Message: "must not be null"}
	}
	switch name {
	case SwitchServing, SwitchCharging:
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return &campaign.FieldError{Field: name, Code: "wrong_type", Message: "must be true or false, got " + clip(v)}
		}
		if name == SwitchServing {
			p.Serving = &b
		} else {
			p.Charging = &b
		}
	case SwitchDecisionLogSample:
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return &campaign.FieldError{Field: name, Code: "wrong_type", Message: "must be a number in [0, 1], got " + clip(v)}
		}
		if !(f >= 0 && f <= 1) {
			return &campaign.FieldError{Field: name, Code: "out_of_range", Message: "must be a number in [0, 1], got " + clip(v)}
		}
		p.DecisionLogSample = &f
	case SwitchPausedCampaigns, SwitchPausedAdvertisers, "pause_campaigns", "unpause_campaigns", "pause_advertisers", "unpause_advertisers":
		ids, fe := decodeIDs(name, v)
		if fe != nil {
			return fe
		}
		switch name {
		case SwitchPausedCampaigns:
			p.PausedCampaigns = ids
		case SwitchPausedAdvertisers:
			p.PausedAdvertisers = ids
		case "pause_campaigns":
			p.PauseCampaigns = ids
		case "unpause_campaigns":
			p.UnpauseCampaigns = ids
		case "pause_advertisers":
			p.PauseAdvertisers = ids
		case "unpause_advertisers":
			p.UnpauseAdvertisers = ids
		}
	default:
		return &campaign.FieldError{Field: name, Code: "unknown_field",
			Message: "unknown field " + strconv.Quote(name) + "; known: " + strings.Join(patchFields, ", ")}
	}
	return nil
}

// decodeIDs decodes a JSON array of ids, never nil, without duplicates.
func decodeIDs(field string, v json.RawMessage) ([]string, *campaign.FieldError) {
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, &campaign.FieldError{Field: field, Code: "wrong_type", Message: "must be an array of ids, got " + clip(v)}
	}
	if len(elems) > maxPauseList {
		return nil, &campaign.FieldError{Field: field, Code: "too_many", Message: fmt.Sprintf("at most %d ids per list", maxPauseList)}
	}
	ids := make([]string, 0, len(elems))
	for i, e := range elems {
		f := field + "[" + strconv.Itoa(i) + "]"
		var id string
		if err := json.Unmarshal(e, &id); err != nil {
			return nil, &campaign.FieldError{Field: f, Code: "wrong_type", Message: "must be a string id, got " + clip(e)}
		}
		if msg := checkID(id); msg != "" {
			return nil, &campaign.FieldError{Field: f, Code: "invalid_id", Message: msg}
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// checkID applies the catalog's id rules (campaign.Campaign.Validate):
// 1..128 bytes of printable ASCII without space, '/', '?', '#' or '%'.
func checkID(id string) string {
	if id == "" {
		return "must not be empty"
	}
	if len(id) > 128 {
		return "must be at most 128 bytes"
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b == '/' || b == '?' || b == '#' || b == '%' || b >= 0x7f {
			return fmt.Sprintf("must be printable ASCII without spaces, '/', '?', '#' or '%%', got %q", id)
		}
	}
	return ""
}

// check reports contradictions between the fields of a patch.
func (p *SwitchPatch) check() campaign.Errors {
	var errs campaign.Errors
	for _, g := range []struct {
		set           []string
		setName       string
		pause, unpaus []string
		kind          string
	}{
		{p.PausedCampaigns, SwitchPausedCampaigns, p.PauseCampaigns, p.UnpauseCampaigns, "campaigns"},
		{p.PausedAdvertisers, SwitchPausedAdvertisers, p.PauseAdvertisers, p.UnpauseAdvertisers, "advertisers"},
	} {
		if g.set != nil && (g.pause != nil || g.unpaus != nil) {
			errs = append(errs, campaign.FieldError{Field: g.setName, Code: "conflict",
				Message: "replace the set with " + g.setName + ", or change it with pause_" + g.kind + "/unpause_" + g.kind + ", not both"})
			continue
		}
		for _, id := range g.pause {
			if slices.Contains(g.unpaus, id) {
				errs = append(errs, campaign.FieldError{Field: "unpause_" + g.kind, Code: "conflict",
					Message: strconv.Quote(id) + " is both paused and unpaused"})
				break
			}
		}
	}
	return errs
}

func clip(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) > 40 {
		return string(v[:40]) + "..."
	}
	return string(v)
}

// decodeControl turns one adserver.control record (non-empty value) into
// the patch it stands for.
func decodeControl(key string, value []byte) (*SwitchPatch, error) {
	if key == "" {
		return nil, fmt.Errorf("record has no key (see targeting/feed/switches.go for the key scheme)")
	}
	for _, prefix := range []string{SwitchPausedCampaigns, SwitchPausedAdvertisers} {
		id, ok := strings.CutPrefix(key, prefix+"/")
		if !ok {
			continue
		}
		if msg := checkID(id); msg != "" {
			return nil, fmt.Errorf("key %q: id %s", key, msg)
		}
		var paused bool
		if err := json.Unmarshal(value, &paused); err != nil {
			return nil, fmt.Errorf("key %q: value must be true or false, got %s", key, clip(value))
		}
		p := &SwitchPatch{}
		switch {
		case prefix == SwitchPausedCampaigns && paused:
			p.PauseCampaigns = []string{id}
		case prefix == SwitchPausedCampaigns:
			p.UnpauseCampaigns = []string{id}
		case paused:
			p.PauseAdvertisers = []string{id}
		default:
			p.UnpauseAdvertisers = []string{id}
		}
		return p, nil
	}
	if slices.Contains(patchFields, key) {
		p := &SwitchPatch{}
		if fe := p.setField(key, value); fe != nil {
			return nil, fe
		}
		return p, nil
	}
	if v := bytes.TrimSpace(value); len(v) == 0 || v[0] != '{' {
		return nil, fmt.Errorf("unknown key %q: the value of a key other than %s or %s/<id> and %s/<id> must be a JSON object",
			key, strings.Join(patchFields[:5], ", "), SwitchPausedCampaigns, SwitchPausedAdvertisers)
	}
	return DecodeSwitchPatch(value)
}

// ctlEntry is the latest record of one control key.
type ctlEntry struct {
	seq   uint64 // order of application on this node
	patch *SwitchPatch
}

// applyTo applies p to the mutable state sw (whose maps it owns).
func (p *SwitchPatch) applyTo(sw *decision.Switches) {
	if p.Serving != nil {
		sw.Serving = *p.Serving
	}
	if p.Charging != nil {
		sw.Charging = *p.Charging
	}
	if p.DecisionLogSample != nil {
		sw.DecisionLogSample = *p.DecisionLogSample
	}
	applySet(sw.PausedCampaigns, p.PausedCampaigns, p.PauseCampaigns, p.UnpauseCampaigns)
	applySet(sw.PausedAdvertisers, p.PausedAdvertisers, p.PauseAdvertisers, p.UnpauseAdvertisers)
}

func applySet(m map[string]bool, replace, add, remove []string) {
	if replace != nil {
		clear(m)
		for _, id := range replace {
			m[id] = true
		}
	}
	for _, id := range add {
		m[id] = true
	}
	for _, id := range remove {
		delete(m, id)
	}
}

// foldSwitches builds the state from the latest record of each key.
func foldSwitches(ctl map[string]ctlEntry) *decision.Switches {
	sw := &decision.Switches{
		Serving:           true,
		Charging:          true,
		PausedCampaigns:   map[string]bool{},
		PausedAdvertisers: map[string]bool{},
		DecisionLogSample: DefaultDecisionLogSample,
	}
	entries := make([]ctlEntry, 0, len(ctl))
	for _, e := range ctl {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].seq < entries[j].seq })
	for _, e := range entries {
		e.patch.applyTo(sw)
	}
	return sw
}

// applyControl folds control items, in order, into the feed's per-key
// state and returns the new switches. Only the apply goroutine calls it.
func (f *Feed) applyControl(items []item) *decision.Switches {
	for _, it := range items {
		f.ctlSeq++
		if it.del {
			delete(f.ctl, it.key)
		} else {
			f.ctl[it.key] = ctlEntry{seq: f.ctlSeq, patch: it.sw}
		}
	}
	sw := foldSwitches(f.ctl)
	switchApplied.Add(len(items))
	setSwitchGauges(sw)
	f.log().Info("switches applied", "records", len(items), "serving", sw.Serving, "charging", sw.Charging,
		"paused_campaigns", len(sw.PausedCampaigns), "paused_advertisers", len(sw.PausedAdvertisers),
		"decision_log_sample", sw.DecisionLogSample)
	return sw
}

func setSwitchGauges(sw *decision.Switches) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	switchServing.Set(b(sw.Serving))
	switchCharging.Set(b(sw.Charging))
	switchPausedCamps.Set(float64(len(sw.PausedCampaigns)))
	switchPausedAdvs.Set(float64(len(sw.PausedAdvertisers)))
	switchSample.Set(sw.DecisionLogSample)
}

// kv is one record to produce.
type kv struct {
	key   string
	value []byte
}

// switchRecords returns the records that apply p on top of cur: one per
// field, and one per id whose pause changes. A replaced set becomes pause
// records for the ids it adds and unpause records (value false, which
// overrides a pause from any other key) for the ids it drops.
func (p *SwitchPatch) switchRecords(cur *decision.Switches) []kv {
	if cur == nil {
		cur = defaultSwitches
	}
	var out []kv
	boolRec := func(k string, v bool) { out = append(out, kv{k, strconv.AppendBool(nil, v)}) }
	if p.Serving != nil {
		boolRec(SwitchServing, *p.Serving)
	}
	if p.Charging != nil {
		boolRec(SwitchCharging, *p.Charging)
	}
	if p.DecisionLogSample != nil {
		out = append(out, kv{SwitchDecisionLogSample, strconv.AppendFloat(nil, *p.DecisionLogSample, 'g', -1, 64)})
	}
	sets := func(prefix string, curSet map[string]bool, replace, add, remove []string) {
		if replace != nil {
			for _, id := range replace {
				if !curSet[id] {
					add = append(add, id)
				}
			}
			for _, id := range slices.Sorted(maps.Keys(curSet)) {
				if !slices.Contains(replace, id) {
					remove = append(remove, id)
				}
			}
		}
		for _, id := range add {
			boolRec(prefix+"/"+id, true)
		}
		for _, id := range remove {
			boolRec(prefix+"/"+id, false)
		}
	}
	sets(SwitchPausedCampaigns, cur.PausedCampaigns, p.PausedCampaigns, p.PauseCampaigns, p.UnpauseCampaigns)
	sets(SwitchPausedAdvertisers, cur.PausedAdvertisers, p.PausedAdvertisers, p.PauseAdvertisers, p.UnpauseAdvertisers)
	return out
}

// publishParallelism bounds concurrent produce calls of one PublishSwitches.
const publishParallelism = 8

// PublishSwitches writes the records that apply p to adserver.control and
// waits, at most wait, until this node has applied all of them. On timeout
// it returns an error wrapping ErrNotVisible: the records are durable and
// will apply. If producing fails part-way, some fields may have changed;
// the records are idempotent, so the caller may retry the same patch.
// Fields of one patch are separate records and other nodes may apply them a
// batch apart.
func (f *Feed) PublishSwitches(ctx context.Context, p *SwitchPatch, wait time.Duration) error {
	f.init()
	recs := p.switchRecords(f.Snapshot().Switches)
	if len(recs) == 0 {
		return nil
	}
	var (
		mu    sync.Mutex
		last  = map[int]int64{} // partition → highest offset written
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, publishParallelism)
	)
	for _, r := range recs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			part, off, err := f.Client.Produce(ctx, bus.TopicControl, []byte(r.key), r.value)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			if o, ok := last[part]; !ok || off > o {
				last[part] = off
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for part, off := range last {
		if err := f.WaitApplied(wctx, bus.TopicControl, part, off); err != nil {
			return fmt.Errorf("%w (topic %s, partition %d, offset %d)", ErrNotVisible, bus.TopicControl, part, off)
		}
	}
	return nil
}

// EncodeSwitches returns the JSON of GET /v1/switches:
// {"serving":true,"charging":true,"paused_advertisers":[],"paused_campaigns":[],"decision_log_sample":0.01}
// with sorted id lists. A nil sw encodes the defaults.
func EncodeSwitches(sw *decision.Switches) []byte {
	if sw == nil {
		sw = defaultSwitches
	}
	b, _ := json.Marshal(struct {
		Serving           bool     `json:"serving"`
		Charging          bool     `json:"charging"`
		PausedAdvertisers []string `json:"paused_advertisers"`
		PausedCampaigns   []string `json:"paused_campaigns"`
		DecisionLogSample float64  `json:"decision_log_sample"`
	}{
		Serving:           sw.Serving,
		Charging:          sw.Charging,
		PausedAdvertisers: sortedTrue(sw.PausedAdvertisers),
		PausedCampaigns:   sortedTrue(sw.PausedCampaigns),
		DecisionLogSample: sw.DecisionLogSample,
	})
	return b
}

func sortedTrue(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for id, on := range m {
		if on {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
