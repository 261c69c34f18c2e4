package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.IMAP.Listen != "127.0.0.1:1143" || c.SMTP.MaxMessageSize != 50<<20 || c.Storage.Backend != "sqlite" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	c, err := Parse("", "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.File = ""
	if !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("empty file differs from defaults:\n%+v\n%+v", c, Defaults())
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skrytka.toml")
	text := `
data_dir = "/var/lib/skrytka"
hostname = "mail.example.org"
domains  = ["Example.ORG", "example.net"]

[imap]
listen = ""
tls_listen = "[::]:993"

[pop3]
after_download = "trash"
mark_seen_on_retr = true

[smtp]
listen = ":25"
max_message_size = "20MB"
recipient_delimiter = "-"
catchall = { "example.net" = "Postmaster@example.org" }
[smtp.aliases]
"info@example.org" = ["alice@example.org", "bob@example.org"]

[auth]
failure_window = "1d"
cache_ttl = "0"
cache_size = 500

[limits]
trusted_networks = ["10.0.0.0/8", "192.0.2.7"]

[log]
format = "json"
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/skrytka" || c.Hostname != "mail.example.org" {
		t.Errorf("top level: %+v", c)
	}
	if !reflect.DeepEqual(c.Domains, []string{"example.org", "example.net"}) {
		t.Errorf("domains = %q", c.Domains)
	}
	if c.IMAP.Listen != "" || c.IMAP.TLSListen != "[::]:993" || c.POP3.Listen != "127.0.0.1:1110" {
		t.Errorf("listeners: %+v %+v", c.IMAP, c.POP3)
	}
	if c.POP3.AfterDownload != "trash" || !c.POP3.MarkSeenOnRetr {
		t.Errorf("pop3: %+v", c.POP3)
	}
	if c.SMTP.MaxMessageSize != 20_000_000 || c.SMTP.RecipientDelimiter != "-" || c.SMTP.MaxRecipients != 100 {
		t.Errorf("smtp: %+v", c.SMTP)
	}
	if got := c.SMTP.Catchall["example.net"]; got != "postmaster@example.org" {
		t.Errorf("catchall = %q", got)
	}
	if got := c.SMTP.Aliases["info@example.org"]; len(got) != 2 {
		t.Errorf("aliases = %q", got)
	}
	if c.Auth.FailureWindow.D() != 24*time.Hour || c.Auth.FailureDelay.D() != time.Second || c.Auth.CacheTTL != 0 || c.Auth.CacheSize != 500 {
		t.Errorf("auth: %+v", c.Auth)
	}
	if ps := c.TrustedPrefixes(); len(ps) != 2 || ps[1].String() != "192.0.2.7/32" {
		t.Errorf("trusted = %v", ps)
	}
	if c.Log.Format != "json" || c.Log.Level != "info" {
		t.Errorf("log: %+v", c.Log)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		key        string // expected Error.Key
		line       int    // expected Error.Line, 0: don't care
		msg        string // substring of the message
	}{
		{"unknown top key", "data_dri = \"x\"\n", "data_dri", 1, "unknown key"},
		{"unknown section key", "[imap]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n", "imap.lisen", 3, "unknown key"},
		{"unknown section", "[imapd]\nlisten = \"x\"\n", "imapd", 0, "unknown key"},
		{"bad listen", "[imap]\nlisten = \"nonsense\"\n", "imap.listen", 0, "bad address"},
		{"bad port", "[pop3]\nlisten = \"127.0.0.1:99999\"\n", "pop3.listen", 0, "bad port"},
		{"bad size", "[smtp]\nmax_message_size = \"50XB\"\n", "smtp.max_message_size", 2, "unknown unit"},
		{"bad duration", "[auth]\nfailure_delay = \"soon\"\n", "auth.failure_delay", 2, "bad duration"},
		{"bad cache_size", "[auth]\ncache_size = 0\n", "auth.cache_size", 0, "positive"},
		{"negative cache_ttl", "[auth]\ncache_ttl = \"-1h\"\n", "auth.cache_ttl", 2, "negative"},
		{"bad policy", "[auth]\nallow_plaintext = \"sometimes\"\n", "auth.allow_plaintext", 0, "never"},
		{"bad backend", "[storage]\nbackend = \"mysql\"\n", "storage.backend", 0, "sqlite"},
		{"postgres needs dsn", "[storage]\nbackend = \"postgres\"\n", "storage.dsn", 0, "must be set"},
		{"key without cert", "[tls]\nkey_file = \"k.pem\"\n", "tls.cert_file", 0, "must be set"},
		{"bad after_download", "[pop3]\nafter_download = \"shred\"\n", "pop3.after_download", 0, "expunge"},
		{"bad network", "[limits]\ntrusted_networks = [\"10.0.0.0/33\"]\n", "limits.trusted_networks", 0, "bad network"},
		{"no domains", "domains = []\n", "domains", 0, "at least one"},
		{"catchall foreign domain", "[smtp]\ncatchall = { \"other.org\" = \"a@localhost\" }\n", "smtp.catchall", 0, "not in domains"},
		{"bad smarthost", "[queue]\nsmarthost = \"relay.example.org\"\n", "queue.smarthost", 0, "bad address"},
		{"smarthost user without password", "[queue]\nsmarthost = \"relay.example.org:587\"\nsmarthost_user = \"me\"\n", "queue.smarthost_password_file", 0, "both"},
		{"bad selector", "[dkim]\nselector = \"a b\"\n", "dkim.selector", 0, "selector"},
		{"bad log level", "[log]\nlevel = \"loud\"\n", "log.level", 0, "debug"},
		{"syntax", "data_dir = \n", "", 1, ""},
		{"wrong type", "[limits]\nmax_connections = \"many\"\n", "", 0, "incompatible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.toml")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want *Error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message has several lines: %q", msg)
			}
			if !strings.Contains(msg, path) {
				t.Errorf("message %q does not name the file", msg)
			}
			if tc.key != "" && ce.Key != tc.key {
				t.Errorf("key = %q, want %q (%s)", ce.Key, tc.key, msg)
			}
			if tc.line != 0 && ce.Line != tc.line {
				t.Errorf("line = %d, want %d (%s)", ce.Line, tc.line, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Load = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "1024": 1024, "10B": 10, "1KiB": 1024, "1kb": 1000, "50MiB": 50 << 20,
		"50M": 50 << 20, "2GB": 2e9, "1 GiB": 1 << 30,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "12XB", "99999999999999999999", "9999999999GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	if s := Size(50 << 20).String(); s != "50MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "10m": 10 * time.Minute, "5d": 120 * time.Hour, "1d12h": 36 * time.Hour, "0s": 0,
	} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-5s", "5x", "1.5d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

// TestDocumented checks that docs/config.md names every key this package
// decodes, with its default.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/config.md does not document `%s`", key)
		}
	}
}
