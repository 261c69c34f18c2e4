package config

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse and Validate: no panic, and
// every failure is an *Error whose message names the file (so operators
// see where to look).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"data_dir = \"/var/lib/skrytka\"\nhostname = \"mail.example.org\"\ndomains = [\"example.org\"]\n",
		"[imap]\nlisten = \"0.0.0.0:143\"\nappend_limit = \"20MiB\"\n",
		"[auth]\nfailure_delay = \"2s\"\nmax_failure_delay = \"5m\"\nfailure_window = \"1d\"\nallow_plaintext = \"never\"\n",
		"[limits]\nmax_connections = 10\nmax_connections_per_ip = 2\ntrusted_networks = [\"10.0.0.0/8\", \"192.0.2.1\", \"::1\"]\n",
		"[smtp]\nmax_message_size = \"1GiB\"\n[smtp.aliases]\n\"postmaster@example.org\" = [\"a@example.org\"]\n[smtp.catchall]\n\"example.org\" = \"a@example.org\"\n",
		"[storage]\nbackend = \"postgres\"\ndsn = \"postgres://x@localhost/db\"\n",
		"[pop3]\nafter_download = \"trash\"\nmark_seen_on_retr = true\n",
		"[log]\nformat = \"json\"\nlevel = \"debug\"\n",
		"[imap]\nappend_limit = \"-1\"\n",
		"[imap]\nappend_limit = \"99999999999999999999TiB\"\n",
		"[auth]\nfailure_delay = \"-5s\"\n",
		"unknown_key = 1\n",
		"[imap\n",
		"domains = \"not a list\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse(text, "fuzz.toml")
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error is %T, not *Error: %v", err, err)
		}
		if ce.File != "fuzz.toml" {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
