package reports

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adserver/adserver/campaign"
)

// Defaults of Config fields left zero.
const (
	DefaultDatabase      = "adserver"
	DefaultQueryTimeout  = 5 * time.Second
	DefaultMaxConcurrent = 4
	DefaultMaxWait       = 100 * time.Millisecond
	DefaultMaxRange      = 400 * 24 * time.Hour
	DefaultMaxRows       = 10_000
)

// Config configures a Handler. Only Conn is required.
type Config struct {
	// Conn is the ClickHouse connection (events/clickhouse.Open). Required.
	// The Handler never closes it.
	Conn driver.Conn
	// Database holds the schema events/clickhouse.Migrate created.
	// Default "adserver". Letters, digits and '_' only.
	Database string
	// AdminToken, when set, is accepted as a bearer token that sees every
	// advertiser and may filter by advertiser_id. Empty disables admin
	// access to reports.
	AdminToken string
	// Advertisers returns the advertiser whose API key hashes to keyHash
	// (lowercase hex SHA-256, campaign.Advertiser.APIKeyHash), or nil. It
	// is called once per request and must be safe for concurrent use. Nil
	// means only the admin token is accepted.
	Advertisers func(keyHash string) *campaign.Advertiser
	// QueryTimeout bounds each report query (client deadline and the
	// server's max_execution_time). Default 5s. A query that runs out
	// answers 504.
	QueryTimeout time.Duration
	// MaxConcurrent is how many report queries may run at once. Default 4.
	MaxConcurrent int
	// MaxWait is how long a request waits for a free slot before it is
	// answered 503 with Retry-After. Default 100ms; negative means do not
	// wait at all.
	MaxWait time.Duration
	// MaxRange is the longest allowed [from, to) span, measured on the
	// wall clock of the report's time zone (so DST does not shorten it).
	// Default 400 days.
	MaxRange time.Duration
	// MaxRows is the most rows a report may have; a larger one answers 400
	// (too_many_rows) asking for a narrower request, never a silently
	// truncated report. Default 10,000.
	MaxRows int
	// Now is the clock for default dates. Default time.Now.
	Now func() time.Time
	// Logger receives server-side failures. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	if c.Conn == nil {
		return errors.New("reports: Config.Conn is required")
	}
	if c.Database != "" {
		if err := validIdent(c.Database); err != nil {
			return fmt.Errorf("reports: Config.Database: %w", err)
		}
	}
	switch {
	case c.QueryTimeout < 0:
		return fmt.Errorf("reports: Config.QueryTimeout must not be negative, got %v", c.QueryTimeout)
	case c.MaxConcurrent < 0:
		return fmt.Errorf("reports: Config.MaxConcurrent must not be negative, got %d", c.MaxConcurrent)
	case c.MaxRange < 0:
		return fmt.Errorf("reports: Config.MaxRange must not be negative, got %v", c.MaxRange)
	case c.MaxRows < 0:
		return fmt.Errorf("reports: Config.MaxRows must not be negative, got %d", c.MaxRows)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxRange == 0 {
		c.MaxRange = DefaultMaxRange
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validIdent accepts plain identifiers only, so the database name can be
// spliced into SQL (quoted) safely.
func validIdent(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("invalid ClickHouse database name %q: must be 1-64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and '_'", s)
		}
	}
	return nil
}
