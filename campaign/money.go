package campaign

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// Micros is an amount of money in millionths of the account currency.
// All arithmetic on money inside the server uses Micros; decimals exist only
// at the JSON edge.
type Micros int64

// MicrosPerUnit is the number of micros in one unit of currency.
const MicrosPerUnit = 1_000_000

// maxMoneyUnits bounds parsed amounts so that sums of many of them cannot
// overflow int64 (9.2e18 micros = 9.2e12 units).
const maxMoneyUnits = 1_000_000_000_000

var (
	errMoneySyntax    = errors.New("must be a decimal number")
	errMoneyPrecision = errors.New("must have at most 6 decimal places")
	errMoneyRange     = errors.New("is out of range")
)

// ParseMicros parses a JSON decimal number (such as 2.5, 0.000001 or 1e-3)
// into micros without passing through floating point. More than six
// significant decimal places is an error, not a rounding.
func ParseMicros(s string) (Micros, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	intDigits, fracDigits, hasPoint := strings.Cut(mant, ".")
	if !allDigits(intDigits) || !allDigits(fracDigits) || intDigits == "" || (hasPoint && fracDigits == "") {
		return 0, errMoneySyntax
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expPart)
		if err != nil || e > 20 || e < -20 {
			return 0, errMoneySyntax
		}
		exp = e
	}
	// Shift the decimal point by exp over the digit string.
	all := strings.TrimLeft(intDigits, "0") + fracDigits
	point := len(strings.TrimLeft(intDigits, "0")) + exp
	if point > len(all) {
		all += strings.Repeat("0", point-len(all))
	}
	var whole, fraction string
	if point <= 0 {
		whole, fraction = "", strings.Repeat("0", -point)+all
	} else {
		whole, fraction = all[:point], all[point:]
	}
	fraction = strings.TrimRight(fraction, "0")
	if len(fraction) > 6 {
		return 0, errMoneyPrecision
	}
	fraction += strings.Repeat("0", 6-len(fraction))
	if len(whole) > 13 {
		return 0, errMoneyRange
	}
	var w uint64
	if whole != "" {
		w, _ = strconv.ParseUint(whole, 10, 64)
	}
	if w > maxMoneyUnits {
		return 0, errMoneyRange
	}
	f, _ := strconv.ParseUint(fraction, 10, 64)
	v := Micros(w*MicrosPerUnit + f)
	if neg {
		v = -v
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AppendDecimal appends m as a JSON decimal number in currency units with no
// trailing zeros (2500000 → 2.5, 1 → 0.000001, 0 → 0).
func (m Micros) AppendDecimal(dst []byte) []byte {
	v := int64(m)
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	dst = strconv.AppendInt(dst, v/MicrosPerUnit, 10)
	f := v % MicrosPerUnit
	if f == 0 {
		return dst
	}
	var buf [7]byte
	buf[0] = '.'
	for i := 6; i >= 1; i-- {
		buf[i] = byte('0' + f%10)
		f /= 10
	}
	n := 7
	for buf[n-1] == '0' {
		n--
	}
	return append(dst, buf[:n]...)
}

// String formats m as a decimal in currency units.
func (m Micros) String() string { return string(m.AppendDecimal(nil)) }

// MarshalJSON writes m as a decimal number in currency units.
func (m Micros) MarshalJSON() ([]byte, error) { return m.AppendDecimal(nil), nil }

// UnmarshalJSON reads a decimal number in currency units. A quoted number is
// rejected: money is a JSON number.
func (m *Micros) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	v, err := ParseMicros(string(b))
	if err != nil {
		// An UnmarshalTypeError gets its field path filled in by
		// encoding/json; the Value carries the reason.
		return &json.UnmarshalTypeError{Value: "money " + string(b) + " (" + err.Error() + ")", Type: microsType}
	}
	*m = v
	return nil
}

var microsType = reflect.TypeOf(Micros(0))
