package auction

import (
	"strconv"

	"github.com/adserver/adserver/campaign"
)

// Reason is how a candidate fared in its slot.
type Reason uint8

// Reasons.
const (
	// Won: the candidate filled the slot.
	Won Reason = iota + 1
	// Lost: another candidate of the slot ranked higher.
	Lost
	// BelowFloor: the candidate's eCPM was below the slot's reserve (or 0).
	BelowFloor
	// Excluded: competitive exclusion; the candidate's advertiser had
	// already won another slot of the request when this one was filled.
	Excluded
)

var reasonNames = [...]string{"unknown", "won", "lost", "below_floor", "excluded"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return reasonNames[0]
}

// MarshalText writes the reason's name (won, lost, below_floor, excluded).
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Outcome explains what happened to one candidate of one slot.
type Outcome struct {
	// Slot is the slot's index in Request.Slots, SlotID its id; Index is
	// the candidate's index in the slot's Candidates.
	Slot   int
	SlotID string
	Index  int

	Campaign *campaign.Campaign
	Creative *campaign.Creative
	Reason   Reason
	// ECPM is the candidate's eCPM and Reserve the slot's reserve (or the
	// candidate's own Floor, if higher).
	ECPM    campaign.Micros
	Reserve campaign.Micros

	// Price and ClearingECPM are set when Reason is Won (see [Win]).
	Price        campaign.Micros
	ClearingECPM campaign.Micros

	// By is, when Reason is Lost, the slot's winner (ByECPM its eCPM,
	// BySlotID this slot); when Reason is Excluded, the campaign of the
	// same advertiser that won slot BySlotID.
	By       *campaign.Campaign
	ByECPM   campaign.Micros
	BySlotID string
}

// Outcome explains the last run's result for candidate i of slot slot. It
// panics if the indexes are out of range.
func (a *Auction) Outcome(slot, i int) Outcome {
	s := &a.slots[slot]
	if i < 0 || s.lo+i >= s.hi {
		panic("auction: candidate index " + strconv.Itoa(i) + " out of range")
	}
	return a.outcome(slot, s.lo+i)
}

// AppendOutcomes appends the outcome of every candidate of the last run to
// dst, slot by slot in request order, candidates in request order, and
// returns the extended slice. Nothing is computed unless it is called.
func (a *Auction) AppendOutcomes(dst []Outcome) []Outcome {
	for i := range a.slots {
		for j := a.slots[i].lo; j < a.slots[i].hi; j++ {
			dst = append(dst, a.outcome(i, j))
		}
	}
	return dst
}

func (a *Auction) outcome(i, j int) Outcome {
	s, e := &a.slots[i], &a.entries[j]
	o := Outcome{
		Slot: i, SlotID: a.req.Slots[i].ID, Index: j - s.lo,
		Campaign: e.cand.Campaign, Creative: e.cand.Creative,
		ECPM: e.ecpm, Reserve: max(s.reserve, clampMicros(e.cand.Floor)),
	}
	if !e.ok {
		o.Reason = BelowFloor
		return o
	}
	if j == s.win {
		w := a.win(i)
		o.Reason, o.Price, o.ClearingECPM = Won, w.Price, w.ClearingECPM
		return o
	}
	// Excluded when the advertiser had won an earlier-filled slot; an
	// eligible candidate of a slot left empty must have been.
	if k := a.placedIndex(e.adv); k >= 0 && (s.win < 0 || k < s.seq) {
		by := &a.slots[a.placed[k].slot]
		o.Reason = Excluded
		o.By, o.ByECPM = a.entries[by.win].cand.Campaign, a.entries[by.win].ecpm
		o.BySlotID = a.req.Slots[a.placed[k].slot].ID
		return o
	}
	if s.win < 0 {
		panic("BUG: auction: eligible candidate in an unfilled slot")
	}
	o.Reason = Lost
	o.By, o.ByECPM, o.BySlotID = a.entries[s.win].cand.Campaign, a.entries[s.win].ecpm, o.SlotID
	return o
}

// AppendText appends a one-line explanation for people to dst, such as
//
//	c-2/cr-7 slot s1: lost to c-1 (priority 5, eCPM 2.5); own priority 0, eCPM 1.2
func (o *Outcome) AppendText(dst []byte) []byte {
	dst = append(dst, o.Campaign.ID...)
	if o.Creative != nil {
		dst = append(dst, '/')
		dst = append(dst, o.Creative.ID...)
	}
	dst = append(dst, " slot "...)
	dst = append(dst, o.SlotID...)
	dst = append(dst, ": "...)
	switch o.Reason {
	case Won:
		dst = append(dst, "won at "...)
		dst = o.Price.AppendDecimal(dst)
		if o.Campaign.Bid.Model == campaign.BidCPC {
			dst = append(dst, " per click"...)
		} else {
			dst = append(dst, " per mille"...)
		}
		dst = append(dst, " (clearing eCPM "...)
		dst = o.ClearingECPM.AppendDecimal(dst)
		dst = append(dst, ", eCPM "...)
		dst = o.ECPM.AppendDecimal(dst)
		dst = append(dst, ", reserve "...)
		dst = o.Reserve.AppendDecimal(dst)
		dst = append(dst, ')')
	case Lost:
		dst = append(dst, "lost to "...)
		dst = append(dst, o.By.ID...)
		dst = append(dst, " (priority "...)
		dst = strconv.AppendInt(dst, int64(o.By.Priority), 10)
		dst = append(dst, ", eCPM "...)
		dst = o.ByECPM.AppendDecimal(dst)
		dst = append(dst, "); own priority "...)
		dst = strconv.AppendInt(dst, int64(o.Campaign.Priority), 10)
		dst = append(dst, ", eCPM "...)
		dst = o.ECPM.AppendDecimal(dst)
	case BelowFloor:
		dst = append(dst, "below floor: eCPM "...)
		dst = o.ECPM.AppendDecimal(dst)
		if o.ECPM == 0 && o.Reserve == 0 {
			dst = append(dst, " (a bid worth nothing never serves)"...)
			break
		}
		dst = append(dst, " < reserve "...)
		dst = o.Reserve.AppendDecimal(dst)
	case Excluded:
		dst = append(dst, "excluded: advertiser "...)
		dst = append(dst, o.Campaign.AdvertiserID...)
		dst = append(dst, " already won slot "...)
		dst = append(dst, o.BySlotID...)
		dst = append(dst, " with "...)
		dst = append(dst, o.By.ID...)
	default:
		dst = append(dst, "unknown"...)
	}
	return dst
}

// String returns the explanation of AppendText.
func (o Outcome) String() string { return string(o.AppendText(nil)) }
