package feed

import (
	"context"
	"maps"
	"time"

	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
)

// item is one decoded record. A nil value with del set is a deletion.
type item struct {
	tp     tp
	offset int64
	key    string
	del    bool
	c      *campaign.Campaign
	p      *campaign.Placement
	a      *campaign.Advertiser
	sw     *SwitchPatch
}

// decode turns a record into an item, or reports it malformed. It runs on
// the tail's goroutine, so decoding is spread over partitions.
func (f *Feed) decode(r bus.Record) (item, bool) {
	it := item{tp: tp{r.Topic, r.Partition}, offset: r.Offset, key: string(r.Key)}
	recordsCounter(r.Topic).Inc()
	if len(r.Value) == 0 {
		it.del = true
		if it.key == "" {
			malformedCounter(r.Topic).Inc()
			return it, false
		}
		return it, true
	}
	var id string
	var err error
	switch r.Topic {
	case bus.TopicCampaigns:
		it.c, err = campaign.DecodeCampaign(r.Value)
		if err == nil {
			id = it.c.ID
		}
	case bus.TopicPlacements:
		it.p, err = campaign.DecodePlacement(r.Value)
		if err == nil {
			id = it.p.ID
		}
	case bus.TopicAdvertisers:
		it.a, err = campaign.DecodeAdvertiser(r.Value)
		if err == nil {
			id = it.a.ID
		}
	case bus.TopicControl:
		it.sw, err = decodeControl(it.key, r.Value)
		id = it.key // the key is not an id in the value
	}
	if err == nil && id != it.key {
		err = &keyMismatch{key: it.key, id: id}
	}
	if err != nil {
		malformedCounter(r.Topic).Inc()
		if _, seen := f.logged.LoadOrStore(r.Topic, true); !seen {
			f.log().Warn("skipping malformed record (further ones of this topic are only counted in adserver_feed_malformed_records_total)",
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "key", it.key, "error", err)
		}
		return it, false
	}
	return it, true
}

type keyMismatch struct{ key, id string }

func (e *keyMismatch) Error() string {
	return "record key " + e.key + " differs from the body's id " + e.id
}

// pending accumulates decoded records between two snapshot swaps; a later
// record for the same key replaces an earlier one.
type pending struct {
	n           int
	delivered   map[tp]int64
	campaigns   map[string]*campaign.Campaign // nil = delete
	placements  map[string]*campaign.Placement
	advertisers map[string]*campaign.Advertiser
	control     []item // in order: a control record's effect depends on order
}

func newPending() *pending {
	return &pending{
		delivered:   map[tp]int64{},
		campaigns:   map[string]*campaign.Campaign{},
		placements:  map[string]*campaign.Placement{},
		advertisers: map[string]*campaign.Advertiser{},
	}
}

func (p *pending) add(it item, ok bool) {
	p.n++
	p.delivered[it.tp] = it.offset
	if !ok {
		return // malformed: only its offset counts as seen
	}
	switch it.tp.topic {
	case bus.TopicCampaigns:
		p.campaigns[it.key] = it.c
	case bus.TopicPlacements:
		p.placements[it.key] = it.p
	case bus.TopicAdvertisers:
		p.advertisers[it.key] = it.a
	case bus.TopicControl:
		p.control = append(p.control, it)
	}
}

type decoded struct {
	it item
	ok bool
}

func (f *Feed) batchInterval() time.Duration {
	if f.BatchInterval <= 0 {
		return 50 * time.Millisecond
	}
	return f.BatchInterval
}

// apply is the single goroutine that turns records into snapshots.
func (f *Feed) apply(ctx context.Context) error {
	in := make(chan decoded, 8192)
	go func() {
		for r := range f.recs {
			it, ok := f.decode(r)
			select {
			case in <- decoded{it, ok}:
			case <-ctx.Done():
				return
			}
		}
	}()
	p := newPending()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	drain := func() {
		for {
			select {
			case d := <-in:
				p.add(d.it, d.ok)
			default:
				return
			}
		}
	}
	for {
		select {
		case d := <-in:
			p.add(d.it, d.ok)
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		drain()
		if !f.Ready() {
			if f.bootstrapDone(p.delivered) {
				f.commit(p)
				p = newPending()
				last = time.Now()
			}
			continue
		}
		if p.n == 0 {
			if next := withCompactedIndex(f.cur.Load(), f.now()); next != nil {
				f.cur.Store(next)
				snapshotSwaps.Inc()
			}
			continue
		}
		// Batch: at most one swap per interval.
		if wait := f.batchInterval() - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
		collect:
			for {
				select {
				case d := <-in:
					p.add(d.it, d.ok)
				case <-t.C:
					break collect
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
		}
		drain()
		f.commit(p)
		p = newPending()
		last = time.Now()
	}
}

// withCompactedIndex returns old with its index replaced by the result of a
// finished background compaction, or nil when there is none. Update picks a
// compaction up with the next change; a catalog that stops changing would
// otherwise keep serving from the uncompacted index, whose dead and
// appended ids every query walks past.
func withCompactedIndex(old *Snapshot, now time.Time) *Snapshot {
	if old == nil || old.Index == nil || !old.Index.Stats().Compacting {
		return nil
	}
	nx := old.Index.Update(nil, nil)
	if nx == old.Index {
		return nil
	}
	next := *old
	next.Index, next.Built = nx, now
	return &next
}

// commit builds the next snapshot from the current one and p, swaps it in,
// and publishes the applied offsets.
func (f *Feed) commit(p *pending) {
	old := f.cur.Load()
	next := &Snapshot{
		Index:            old.Index,
		Placements:       old.Placements,
		Advertisers:      old.Advertisers,
		AdvertisersByKey: old.AdvertisersByKey,
		Switches:         old.Switches,
		Built:            f.now(),
	}
	if len(p.control) > 0 {
		next.Switches = f.applyControl(p.control)
	}
	if len(p.campaigns) > 0 {
		var ups []*campaign.Campaign
		var dels []string
		for id, c := range p.campaigns {
			if c == nil {
				dels = append(dels, id)
			} else {
				ups = append(ups, c)
			}
		}
		next.Index = old.Index.Update(ups, dels)
	}
	if len(p.placements) > 0 {
		next.Placements = maps.Clone(old.Placements)
		for id, pl := range p.placements {
			if pl == nil {
				delete(next.Placements, id)
			} else {
				next.Placements[id] = pl
			}
		}
	}
	if len(p.advertisers) > 0 {
		next.Advertisers = maps.Clone(old.Advertisers)
		for id, a := range p.advertisers {
			if a == nil {
				delete(next.Advertisers, id)
			} else {
				next.Advertisers[id] = a
			}
		}
		next.AdvertisersByKey = make(map[string]*campaign.Advertiser, len(next.Advertisers))
		for _, a := range next.Advertisers {
			if a.APIKeyHash != "" {
				next.AdvertisersByKey[a.APIKeyHash] = a
			}
		}
	}
	f.cur.Store(next)
	snapshotSwaps.Inc()
	lastSwap.Store(time.Now().UnixNano())
	indexCampaigns.Set(float64(next.Index.Len()))

	f.mu.Lock()
	for k, off := range p.delivered {
		if off > f.appliedLocked(k) {
			f.applied[k] = off
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.checkReadyLocked()
	f.mu.Unlock()
}
