package campaign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var stringType = reflect.TypeOf("")

var errDurationSyntax = errors.New(`duration must be a string such as "24h", "30m" or "7d"`)

// ParseDuration parses a Go duration string, also accepting a whole number of
// days with a "d" suffix ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3660 {
			return 0, errDurationSyntax
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDurationSyntax
	}
	return d, nil
}

// DecodeCampaign parses and validates a campaign's JSON. The error, if any,
// is an [Errors] listing every problem with its field path.
func DecodeCampaign(b []byte) (*Campaign, error) {
	c := new(Campaign)
	if err := decodeStrict(b, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// DecodePlacement parses and validates a placement's JSON.
func DecodePlacement(b []byte) (*Placement, error) {
	p := new(Placement)
	if err := decodeStrict(b, p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodeAdvertiser parses and validates an advertiser's JSON. A plain
// api_key is replaced by its hash.
func DecodeAdvertiser(b []byte) (*Advertiser, error) {
	a := new(Advertiser)
	if err := decodeStrict(b, a); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// HashAPIKey returns the hex SHA-256 of an advertiser API key, the form in
// which keys are stored and compared.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// decodeStrict unmarshals one JSON object into v, rejecting unknown fields
// and trailing data, and converts the decoder's error into a FieldError.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return Errors{jsonFieldError(err)}
	}
	if d.More() {
		return Errors{{Code: "invalid_json", Message: "trailing data after the JSON object"}}
	}
	return nil
}

func jsonFieldError(err error) FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Type == microsType:
		return FieldError{Field: typeErr.Field, Code: "invalid_money", Message: typeErr.Value}
	case errors.As(err, &typeErr) && typeErr.Type == durationType:
		return FieldError{Field: typeErr.Field, Code: "invalid_duration", Message: typeErr.Value}
	case errors.As(err, &typeErr):
		return FieldError{Field: typeErr.Field, Code: "wrong_type",
			Message: fmt.Sprintf("cannot use JSON %s as %s", typeErr.Value, typeErr.Type)}
	case errors.As(err, &syntaxErr):
		return FieldError{Code: "invalid_json", Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return FieldError{Field: strings.Trim(f, `"`), Code: "unknown_field", Message: "unknown field " + f}
	}
	if strings.Contains(msg, "unexpected EOF") || err.Error() == "EOF" {
		return FieldError{Code: "invalid_json", Message: "malformed JSON: unexpected end of input"}
	}
	if strings.Contains(msg, "parsing time") {
		return FieldError{Code: "invalid_time", Message: "times must be RFC 3339, such as 2026-11-01T00:00:00Z: " + msg}
	}
	return FieldError{Code: "invalid_json", Message: msg}
}
