package pacing

import (
	"strconv"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

func benchPacer(b *testing.B) (*Pacer, time.Time) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newTestPacer(b, Config{Clock: &fakeClock{t: now}})
	return p, now
}

func BenchmarkAllow(b *testing.B) {
	p, now := benchPacer(b)
	even := testCampaign(b, "c-even", "Asia/Seoul", "even", 1000*unit, 0, "")
	asap := testCampaign(b, "c-asap", "UTC", "asap", 1000*unit, 0, "")
	p.Allow(even, now)
	p.Allow(asap, now)
	p.Tick(now)
	b.Run("even", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Allow(even, now)
		}
	})
	b.Run("asap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Allow(asap, now)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.Allow(even, now)
			}
		})
	})
	// Many campaigns: the map lookup and day state are not all in cache.
	b.Run("10k-campaigns", func(b *testing.B) {
		cs := make([]*campaign.Campaign, 10_000)
		for i := range cs {
			cs[i] = testCampaign(b, "c-"+strconv.Itoa(i), "UTC", "even", 1000*unit, 0, "")
			p.Allow(cs[i], now)
		}
		p.Tick(now)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Allow(cs[i%len(cs)], now)
			i++
		}
	})
}

func BenchmarkReserve(b *testing.B) {
	p, now := benchPacer(b)
	c := testCampaign(b, "c-1", "UTC", "asap", 1000*unit, 0, "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := p.Reserve(c, 1000, now)
			p.Cancel(r)
		}
	})
}

func BenchmarkCharge(b *testing.B) {
	p, now := benchPacer(b)
	c := testCampaign(b, "c-1", "UTC", "asap", 1000*unit, 0, "")
	p.Update(c)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Charge(c.ID, 1, now)
		}
	})
}

func BenchmarkCapAllows(b *testing.B) {
	p, now := benchPacer(b)
	c := testCampaign(b, "c-1", "UTC", "asap", 1000*unit, 0, `"frequency_cap":{"count":3,"window":"24h"},`)
	users := make([]string, 100_000)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
		if i%2 == 0 {
			p.CapRecord(users[i], c, now)
		}
	}
	p.caps.Wait()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.CapAllows(users[i%len(users)], c, now)
		i++
	}
}

func BenchmarkCapRecord(b *testing.B) {
	p, now := benchPacer(b)
	c := testCampaign(b, "c-1", "UTC", "asap", 1000*unit, 0, `"frequency_cap":{"count":3,"window":"24h"},`)
	p.CapRecord("u-1", c, now)
	p.caps.Wait()
	b.Run("existing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.CapRecord("u-1", c, now)
		}
	})
	b.Run("new-user", func(b *testing.B) {
		users := make([]string, 1<<16)
		for i := range users {
			users[i] = "new-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.CapRecord(users[i%len(users)], c, now.Add(time.Duration(i/len(users))*25*time.Hour))
			i++
		}
	})
}

func BenchmarkObserve(b *testing.B) {
	p, now := benchPacer(b)
	p.Observe("p-1", now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Observe("p-1", now)
		}
	})
}
