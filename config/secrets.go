package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Secrets are the values a node generates on first start when they are not
// configured, and keeps in its data directory so that a restart keeps them.
type Secrets struct {
	AdminToken string
	SigningKey string
	NodeID     string
}

// ResolveSecrets returns the configured admin token, signing key and node
// id, generating and storing (mode 0600) in dataDir those that are empty.
func ResolveSecrets(c *Config) (Secrets, error) {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return Secrets{}, fmt.Errorf("cannot create -data-dir %s: %w", c.DataDir, err)
	}
	var s Secrets
	var err error
	if s.AdminToken, err = stored(c.DataDir, "admin-token", c.AdminToken, func() string { return randomHex(16) }); err != nil {
		return s, err
	}
	if s.SigningKey, err = stored(c.DataDir, "signing-key", c.SigningKey, func() string { return "k1:" + randomHex(32) }); err != nil {
		return s, err
	}
	if _, err := ParseKeys(s.SigningKey); err != nil {
		return s, fmt.Errorf("invalid signing key in %s: %w", filepath.Join(c.DataDir, "signing-key"), err)
	}
	if s.NodeID, err = stored(c.DataDir, "node-id", c.NodeID, func() string {
		h, _ := os.Hostname()
		return sanitize(h) + "-" + randomHex(4)
	}); err != nil {
		return s, err
	}
	return s, nil
}

// stored returns configured if set; else the content of dataDir/name; else
// a generated value that it writes there.
func stored(dataDir, name, configured string, gen func() string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, err)
	}
	return v, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	return b.String()
}
