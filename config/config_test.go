package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	os.WriteFile(file, []byte(`{"listen":":9001","admin-listen":":9002","drain":"7s","serving.max-body":4096}`), 0o644)
	c, err := Load([]string{"-config", file, "-admin-listen", ":9100"}, env(map[string]string{
		"ADSERVER_DRAIN":        "9s",
		"ADSERVER_ADMIN_LISTEN": ":9200", // the command line wins over env
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9001" || c.AdminListen != ":9100" || c.Drain != 9*time.Second || c.Serving.MaxBody != 4096 {
		t.Errorf("got listen=%s admin=%s drain=%v maxbody=%d", c.Listen, c.AdminListen, c.Drain, c.Serving.MaxBody)
	}
	if c.Kafka != "embedded" || c.ClickHouse != "127.0.0.1:9000" || c.DataDir != "./data" || c.EmbeddedKafkaListen != "127.0.0.1:9092" {
		t.Errorf("defaults changed: %+v", c)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("serving.max-body"); got != "ADSERVER_SERVING_MAX_BODY" {
		t.Errorf("EnvName = %s", got)
	}
}

func TestValidationNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		setting string
	}{
		{[]string{"-listen", "nonsense"}, nil, "-listen"},
		{[]string{"-listen", ":8080", "-admin-listen", ":8080"}, nil, "-admin-listen"},
		{[]string{"-kafka", "host-without-port"}, nil, "-kafka"},
		{[]string{"-signing-key", "nocolon"}, nil, "-signing-key"},
		{[]string{"-signing-key", "k1:short"}, nil, "-signing-key"},
		{[]string{"-admin-token", "short"}, nil, "-admin-token"},
		{[]string{"-serving.max-body", "10"}, nil, "-serving.max-body"},
		{[]string{"-log-level", "loud"}, nil, "-log-level"},
		{nil, map[string]string{"ADSERVER_DRAIN": "forever"}, "ADSERVER_DRAIN"},
		{[]string{"-clickhouse-database", "x;drop"}, nil, "-clickhouse-database"},
	} {
		_, err := Load(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.setting) {
			t.Errorf("%v %v: err = %v, want it to name %s", tc.args, tc.env, err, tc.setting)
		}
	}
}

func TestConfigFileUnknownSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"lisen":":1"}`), 0o644)
	if _, err := Load([]string{"-config", file}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Errorf("err = %v", err)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"-help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{"-listen", "-admin-listen", "-kafka", "-clickhouse", "-data-dir", "-embedded-kafka-listen", "-admin-token", "-signing-key", "-drain", "-config", "ADSERVER_"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("-help does not list %s", name)
		}
	}
}

func TestResolveSecretsPersist(t *testing.T) {
	c := Default()
	c.DataDir = t.TempDir()
	a, err := ResolveSecrets(&c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ResolveSecrets(&c)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.AdminToken == "" || a.NodeID == "" {
		t.Errorf("secrets not kept across restarts: %+v vs %+v", a, b)
	}
	if keys, err := ParseKeys(a.SigningKey); err != nil || len(keys) != 1 {
		t.Errorf("generated signing key %q: %v", a.SigningKey, err)
	}
	c.AdminToken = "configured-token-0123456789"
	s, _ := ResolveSecrets(&c)
	if s.AdminToken != c.AdminToken {
		t.Error("a configured admin token was not used")
	}
}
