// Package config holds the adserver's settings: their defaults, how they are
// read (command-line flags, ADSERVER_* environment variables, a JSON config
// file) and their validation.
//
// Precedence, lowest first: built-in defaults, the -config file, the
// environment, the command line. A setting named "serving.max-body" is the
// flag -serving.max-body, the environment variable
// ADSERVER_SERVING_MAX_BODY and the key "serving.max-body" in the file.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Config is every setting of one adserver node. The zero value is not
// meaningful; start from [Default].
type Config struct {
	Listen              string
	AdminListen         string
	Kafka               string
	KafkaPartitions     int
	EmbeddedKafkaListen string
	ClickHouse          string
	ClickHouseDatabase  string
	DataDir             string
	AdminToken          string
	SigningKey          string
	Drain               time.Duration
	NodeID              string
	PublicURL           string
	BeaconExpiry        time.Duration
	ApplyWait           time.Duration
	LogLevel            string
	Seed                int64

	Serving  Listener
	Admin    Listener
	EventLog EventLog
	Shipper  Shipper
	Pacing   Pacing
	Limits   Limits
	Abuse    Abuse
}

// Limits are the serving listener's rate limits on ad requests; a rate of
// 0 turns a limit off.
type Limits struct {
	IPRate, PlacementRate   float64
	IPBurst, PlacementBurst int
}

// Abuse configures the detection of user ids seen from too many IPs or
// devices; MaxDistinct 0 turns it off.
type Abuse struct {
	MaxDistinct int
	Window      time.Duration
	FlagFor     time.Duration
}

// Pacing holds the budget pacer's settings.
type Pacing struct {
	// Nodes is the number of nodes sharing every budget; 0 counts the
	// nodes heard on adserver.spend.
	Nodes             int
	ControlInterval   time.Duration
	ReservationExpiry time.Duration
	// DedupEntries bounds the beacon de-duplication cache (event ids).
	DedupEntries int64
}

// Listener is the limits of one HTTP listener.
type Listener struct {
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	MaxBody      int
	Concurrency  int
}

// EventLog is the durable local event log's settings.
type EventLog struct {
	FsyncInterval time.Duration
	MaxBytes      int64
	SegmentBytes  int64
}

// Shipper is the ClickHouse shipper's settings.
type Shipper struct {
	BatchRows     int
	BatchInterval time.Duration
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Listen:              ":8080",
		AdminListen:         ":8081",
		Kafka:               "embedded",
		KafkaPartitions:     4,
		EmbeddedKafkaListen: "127.0.0.1:9092",
		ClickHouse:          "127.0.0.1:9000",
		ClickHouseDatabase:  "adserver",
		DataDir:             "./data",
		Drain:               5 * time.Second,
		BeaconExpiry:        24 * time.Hour,
		ApplyWait:           2 * time.Second,
		LogLevel:            "info",
		Serving: Listener{
			ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
			MaxBody: 64 << 10, Concurrency: 256 * 1024,
		},
		Admin: Listener{
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second,
			MaxBody: 1 << 20, Concurrency: 256,
		},
		EventLog: EventLog{FsyncInterval: 100 * time.Millisecond, MaxBytes: 10 << 30, SegmentBytes: 64 << 20},
		Shipper:  Shipper{BatchRows: 10000, BatchInterval: time.Second},
		Pacing:   Pacing{ControlInterval: 5 * time.Second, ReservationExpiry: time.Minute, DedupEntries: 1_000_000},
		Abuse:    Abuse{MaxDistinct: 5, Window: 10 * time.Second, FlagFor: 10 * time.Minute},
	}
}

// flagSet registers every setting on a FlagSet bound to c.
func (c *Config) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", "", "path of a JSON config file: an object whose keys are these settings' names")
	fs.StringVar(&c.Listen, "listen", c.Listen, "serving listener address (ad requests, beacons, health)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "management listener address (catalog API, reports, dashboard, metrics, pprof)")
	fs.StringVar(&c.Kafka, "kafka", c.Kafka, `Kafka broker list host:port[,host:port...], or "embedded" to run an in-process broker with its data under -data-dir`)
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", c.KafkaPartitions, "partitions of the topics this node creates when they are missing")
	fs.StringVar(&c.EmbeddedKafkaListen, "embedded-kafka-listen", c.EmbeddedKafkaListen, "address of the embedded Kafka broker, so other nodes and kcat can reach it")
	fs.StringVar(&c.ClickHouse, "clickhouse", c.ClickHouse, "ClickHouse native-protocol address; \"off\" keeps events in the local log only (bounded by -eventlog.max-bytes) and disables reports")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", c.ClickHouseDatabase, "ClickHouse database for events and reports")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the event log, the embedded broker's data and generated secrets")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token for management writes and debug requests; empty: generate one and keep it in <data-dir>/admin-token")
	fs.StringVar(&c.SigningKey, "signing-key", c.SigningKey, "tracking URL keys id:secret[,id:secret...]; the first signs, all verify; empty: generate one in <data-dir>/signing-key (share it across nodes!)")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "after SIGTERM, /readyz answers 503 while the node keeps serving this long")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "this node's stable id in events and spend records; empty: generated once and kept in <data-dir>/node-id")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL of the serving listener as clients reach it, used in tracking URLs; empty: http://<listen host or 127.0.0.1>:<port>")
	fs.DurationVar(&c.BeaconExpiry, "beacon-expiry", c.BeaconExpiry, "how long a tracking URL stays valid")
	fs.DurationVar(&c.ApplyWait, "apply-wait", c.ApplyWait, "how long a management write waits for this node to apply it before answering 503")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the auction's tie-breaking randomness; 0: from the clock")
	c.Serving.register(fs, "serving")
	c.Admin.register(fs, "admin")
	fs.DurationVar(&c.EventLog.FsyncInterval, "eventlog.fsync-interval", c.EventLog.FsyncInterval, "longest time an event waits in memory before the log is fsynced")
	fs.Int64Var(&c.EventLog.MaxBytes, "eventlog.max-bytes", c.EventLog.MaxBytes, "disk budget of the event log; past it new events are refused (and counted) while serving goes on")
	fs.Int64Var(&c.EventLog.SegmentBytes, "eventlog.segment-bytes", c.EventLog.SegmentBytes, "size at which the event log rolls to a new segment file")
	fs.IntVar(&c.Shipper.BatchRows, "shipper.batch-rows", c.Shipper.BatchRows, "rows per ClickHouse insert")
	fs.DurationVar(&c.Shipper.BatchInterval, "shipper.batch-interval", c.Shipper.BatchInterval, "longest wait before a partial batch is inserted")
	fs.IntVar(&c.Pacing.Nodes, "pacing.nodes", c.Pacing.Nodes, "nodes sharing every budget, at least the fleet size (each raise of a node's budget share takes at most 1/n of what no node holds); 0: count the nodes heard on adserver.spend")
	fs.DurationVar(&c.Pacing.ControlInterval, "pacing.control-interval", c.Pacing.ControlInterval, "how often the pacing controller updates pass rates and expires reservations")
	fs.DurationVar(&c.Pacing.ReservationExpiry, "pacing.reservation-expiry", c.Pacing.ReservationExpiry, "how long a decision's reserved cost counts against its budget when no beacon charges it")
	fs.Int64Var(&c.Pacing.DedupEntries, "events.dedup-entries", c.Pacing.DedupEntries, "event ids remembered to drop repeated beacons (about 100 bytes each)")
	fs.Float64Var(&c.Limits.IPRate, "limits.ip-rate", c.Limits.IPRate, "ad requests per second allowed per client IP (the connection's address); 0: no limit (the default: exchanges and carrier NAT send much traffic from few IPs)")
	fs.IntVar(&c.Limits.IPBurst, "limits.ip-burst", c.Limits.IPBurst, "burst of the per-IP limit; 0: one second's worth")
	fs.Float64Var(&c.Limits.PlacementRate, "limits.placement-rate", c.Limits.PlacementRate, "ad requests per second allowed per placement; 0: no limit")
	fs.IntVar(&c.Limits.PlacementBurst, "limits.placement-burst", c.Limits.PlacementBurst, "burst of the per-placement limit; 0: one second's worth")
	fs.IntVar(&c.Abuse.MaxDistinct, "abuse.max-distinct", c.Abuse.MaxDistinct, "a user id seen from more than this many distinct IPs, or devices, within -abuse.window is flagged: served but not charged; 0: off")
	fs.DurationVar(&c.Abuse.Window, "abuse.window", c.Abuse.Window, "window of the abuse detection")
	fs.DurationVar(&c.Abuse.FlagFor, "abuse.flag-for", c.Abuse.FlagFor, "how long a flagged user stays flagged (its beacons charge nothing meanwhile)")
	return fs
}

func (l *Listener) register(fs *flag.FlagSet, prefix string) {
	fs.DurationVar(&l.ReadTimeout, prefix+".read-timeout", l.ReadTimeout, prefix+" listener: time to read a whole request")
	fs.DurationVar(&l.WriteTimeout, prefix+".write-timeout", l.WriteTimeout, prefix+" listener: time to write a response")
	fs.DurationVar(&l.IdleTimeout, prefix+".idle-timeout", l.IdleTimeout, prefix+" listener: keep-alive idle time")
	fs.IntVar(&l.MaxBody, prefix+".max-body", l.MaxBody, prefix+" listener: largest request body in bytes (larger gets 413)")
	fs.IntVar(&l.Concurrency, prefix+".concurrency", l.Concurrency, prefix+" listener: most connections served at once")
}

// EnvName returns the environment variable of a setting.
func EnvName(setting string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "ADSERVER_" + strings.ToUpper(r.Replace(setting))
}

// Load reads the settings from args (without the program name), the
// environment (getenv) and the config file named by -config, and validates
// them. With -help it prints every setting to out and returns flag.ErrHelp.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	fs := c.flagSet("adserver")
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: adserver [flags]\n\nEvery flag can also be set by the environment variable ADSERVER_<NAME>\n(upper case, '.' and '-' as '_') or by a key in the -config JSON file.\nPrecedence: flag > environment > file > default.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (settings are flags: -name value)", fs.Arg(0))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	path := fs.Lookup("config").Value.String()
	if path == "" {
		path = getenv(EnvName("config"))
	}
	if path != "" {
		if err := applyFile(fs, path, onCommandLine); err != nil {
			return c, err
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || onCommandLine[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("invalid value %q for %s (environment): %v", v, EnvName(f.Name), e)
			}
		}
	})
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

func applyFile(fs *flag.FlagSet, path string, onCommandLine map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config file: %w", err)
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return fmt.Errorf("cannot parse config file %s: %w", path, err)
	}
	for k, v := range m {
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			return fmt.Errorf("config file %s: unknown setting %q (see adserver -help)", path, k)
		}
		if onCommandLine[k] {
			continue
		}
		s := fmt.Sprint(v)
		if err := f.Value.Set(s); err != nil {
			return fmt.Errorf("config file %s: invalid value %q for %s: %v", path, s, k, err)
		}
	}
	return nil
}

// Validate checks every setting and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("invalid -%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	addr := func(setting, v string) {
		if _, _, err := net.SplitHostPort(v); err != nil {
			bad(setting, "%q is not host:port", v)
		}
	}
	addr("listen", c.Listen)
	addr("admin-listen", c.AdminListen)
	if c.ClickHouse != "off" {
		addr("clickhouse", c.ClickHouse)
	}
	if c.Kafka != "embedded" {
		for _, b := range strings.Split(c.Kafka, ",") {
			addr("kafka", strings.TrimSpace(b))
		}
	} else {
		addr("embedded-kafka-listen", c.EmbeddedKafkaListen)
	}
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		bad("admin-listen", "must differ from -listen (%s): the two listeners are separate bulkheads", c.Listen)
	}
	if c.KafkaPartitions < 1 || c.KafkaPartitions > 1024 {
		bad("kafka-partitions", "must be 1..1024, got %d", c.KafkaPartitions)
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.ClickHouseDatabase == "" || strings.Trim(c.ClickHouseDatabase, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		bad("clickhouse-database", "must be lower-case letters, digits and _, got %q", c.ClickHouseDatabase)
	}
	if c.SigningKey != "" {
		if _, err := ParseKeys(c.SigningKey); err != nil {
			bad("signing-key", "%v", err)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("admin-token", "must be at least 16 characters")
	}
	if c.Drain < 0 {
		bad("drain", "must be >= 0")
	}
	if c.BeaconExpiry < time.Minute {
		bad("beacon-expiry", "must be at least 1m")
	}
	if c.ApplyWait <= 0 {
		bad("apply-wait", "must be > 0")
	}
	if c.Pacing.Nodes < 0 {
		bad("pacing.nodes", "must be >= 0")
	}
	if c.Pacing.ControlInterval < 100*time.Millisecond || c.Pacing.ControlInterval > time.Minute {
		bad("pacing.control-interval", "must be 100ms..1m")
	}
	if c.Pacing.ReservationExpiry < time.Second || c.Pacing.ReservationExpiry > time.Hour {
		bad("pacing.reservation-expiry", "must be 1s..1h")
	}
	if c.Limits.IPRate < 0 || c.Limits.PlacementRate < 0 || c.Limits.IPBurst < 0 || c.Limits.PlacementBurst < 0 {
		bad("limits.ip-rate", "rates and bursts must be >= 0")
	}
	if c.Abuse.MaxDistinct < 0 {
		bad("abuse.max-distinct", "must be >= 0")
	}
	if c.Abuse.MaxDistinct > 0 && (c.Abuse.Window <= 0 || c.Abuse.FlagFor < c.Abuse.Window) {
		bad("abuse.flag-for", "must be at least -abuse.window, which must be > 0")
	}
	if c.Pacing.DedupEntries < 1000 {
		bad("events.dedup-entries", "must be at least 1000")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	for _, l := range []struct {
		name string
		l    Listener
	}{{"serving", c.Serving}, {"admin", c.Admin}} {
		if l.l.ReadTimeout <= 0 || l.l.WriteTimeout <= 0 {
			bad(l.name+".read-timeout", "timeouts must be > 0")
		}
		if l.l.MaxBody < 1024 {
			bad(l.name+".max-body", "must be at least 1024, got %d", l.l.MaxBody)
		}
		if l.l.Concurrency < 1 {
			bad(l.name+".concurrency", "must be >= 1")
		}
	}
	if c.EventLog.FsyncInterval <= 0 {
		bad("eventlog.fsync-interval", "must be > 0")
	}
	if c.EventLog.SegmentBytes < 4096 || c.EventLog.MaxBytes < c.EventLog.SegmentBytes {
		bad("eventlog.max-bytes", "must be >= eventlog.segment-bytes >= 4096")
	}
	if c.Shipper.BatchRows < 1 || c.Shipper.BatchInterval <= 0 {
		bad("shipper.batch-rows", "batch rows and interval must be > 0")
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		bad("public-url", "must start with http:// or https://, got %q", c.PublicURL)
	}
	return errors.Join(errs...)
}

// Key is one tracking-URL signing key.
type Key struct {
	ID     string
	Secret []byte
}

// ParseKeys parses "id:secret[,id:secret...]".
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, part := range strings.Split(s, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" || len(id) > 16 || strings.ContainsAny(id, "&=?#/ ") {
			return nil, fmt.Errorf("key %q is not id:secret with a short id", redact(part))
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("the secret of key %q must be at least 16 characters", id)
		}
		keys = append(keys, Key{ID: id, Secret: []byte(secret)})
	}
	return keys, nil
}

func redact(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i] + ":…"
	}
	return "…"
}
