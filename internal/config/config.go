// Package config turns Skrytka's TOML configuration file into a typed
// Config.
//
// Loading is three separate steps: Defaults fills every field, the file
// overrides what it sets, and Validate checks the result. Unknown keys are
// errors that name the key and the file, so a typo never silently falls
// back to a default. Sizes ("50MiB") and durations ("30m", "5d") are written
// in human units.
//
// The package has no globals and imports nothing from Skrytka but the
// tiny value parsers of package auth: main turns a Config into each
// server's own Options; servers never read a Config. Every key is
// documented with its default in docs/config.md; a test keeps that file and
// this package in step.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/skrytka/skrytka/internal/auth"
)

// Config is the whole configuration. Field docs give the key and default.
type Config struct {
	// data_dir: where the store, the generated certificate and other state
	// live. Default "./skrytka-data".
	DataDir string `toml:"data_dir"`
	// hostname: the server's name in greetings, Received headers and the
	// self-signed certificate. Default "localhost".
	Hostname string `toml:"hostname"`
	// domains: mail for these domains is local. Default ["localhost"].
	Domains []string `toml:"domains"`

	IMAP       IMAP       `toml:"imap"`
	POP3       POP3       `toml:"pop3"`
	SMTP       SMTP       `toml:"smtp"`
	LMTP       LMTP       `toml:"lmtp"`
	Submission Submission `toml:"submission"`
	TLS        TLS        `toml:"tls"`
	Auth       Auth       `toml:"auth"`
	Queue      Queue      `toml:"queue"`
	DKIM       DKIM       `toml:"dkim"`
	Storage    Storage    `toml:"storage"`
	Limits     Limits     `toml:"limits"`
	Log        Log        `toml:"log"`

	// File is the path the config was read from ("" for Defaults only).
	// It is not a config key.
	File string `toml:"-"`
}

// IMAP is the [imap] section.
type IMAP struct {
	Listen    string `toml:"listen"`     // default "127.0.0.1:1143"; "" disables (STARTTLS offered)
	TLSListen string `toml:"tls_listen"` // default "127.0.0.1:1993"; "" disables (implicit TLS)
	// append_limit: the largest message APPEND accepts (APPENDLIMIT).
	// Default "50MiB".
	AppendLimit Size `toml:"append_limit"`
}

// POP3 is the [pop3] section.
type POP3 struct {
	Listen    string `toml:"listen"`     // default "127.0.0.1:1110"
	TLSListen string `toml:"tls_listen"` // default "127.0.0.1:1995"
	// after_download: what DELE+QUIT does on the server: "expunge" (default),
	// "trash", "archive" or "keep". Accounts may override it.
	AfterDownload string `toml:"after_download"`
	// mark_seen_on_retr: set \Seen on messages retrieved with RETR.
	// Default false.
	MarkSeenOnRetr bool `toml:"mark_seen_on_retr"`
	// login_delay: minimum time between two POP3 logins of one account,
	// advertised as LOGIN-DELAY (RFC 2449 §6.5). Default "0s": none.
	LoginDelay Duration `toml:"login_delay"`
}

// SMTP is the [smtp] section: inbound mail as the domains' MX.
type SMTP struct {
	Listen string `toml:"listen"` // default "127.0.0.1:2525"
	// max_message_size: largest message accepted (SIZE), also for LMTP and
	// submission. Default "50MiB".
	MaxMessageSize Size `toml:"max_message_size"`
	// max_recipients: recipients per message. Default 100 (RFC 5321
	// §4.5.3.1.8 minimum).
	MaxRecipients int `toml:"max_recipients"`
	// recipient_delimiter: separates the user from a tag in the local part,
	// so user+tag@domain reaches user@domain. Default "+"; "" disables.
	RecipientDelimiter string `toml:"recipient_delimiter"`
	// aliases: address -> list of local addresses it delivers to.
	Aliases map[string][]string `toml:"aliases"`
	// catchall: domain -> local address that gets mail for unknown users
	// of that domain. Default none.
	Catchall map[string]string `toml:"catchall"`
	// auth_checks: verify SPF, DKIM and DMARC of mail arriving on the MX
	// and record the results in Authentication-Results. Default true;
	// false skips the DNS lookups (e.g. behind a filtering MTA, or
	// offline).
	AuthChecks bool `toml:"auth_checks"`
	// dmarc_policy: "annotate" (default) only records SPF/DKIM/DMARC
	// results in Authentication-Results; "enforce" applies the sender
	// domain's published DMARC policy (p=reject refused, p=quarantine
	// delivered to Junk).
	DMARCPolicy string `toml:"dmarc_policy"`
}

// LMTP is the [lmtp] section.
type LMTP struct {
	Listen string `toml:"listen"` // default "127.0.0.1:2424"
}

// Submission is the [submission] section: mail from our own users.
type Submission struct {
	Listen    string `toml:"listen"`     // default "127.0.0.1:1587" (STARTTLS)
	TLSListen string `toml:"tls_listen"` // default "127.0.0.1:1465" (implicit TLS)
}

// Queue is the [queue] section: outbound delivery of mail that users
// submit for other domains.
type Queue struct {
	// max_age: how long a message is retried before it bounces to its
	// sender. Default "5d" (RFC 5321 §4.5.4.1: 4-5 days).
	MaxAge Duration `toml:"max_age"`
	// smarthost: "host:port" of a relay that takes all outbound mail
	// instead of the recipients' MX hosts (STARTTLS with a verified
	// certificate required). Default "": deliver directly.
	Smarthost string `toml:"smarthost"`
	// smarthost_user: user name for AUTH PLAIN at the smarthost.
	SmarthostUser string `toml:"smarthost_user"`
	// smarthost_password_file: file holding the smarthost password (first
	// line), so the secret stays out of the config file.
	SmarthostPasswordFile string `toml:"smarthost_password_file"`
}

// DKIM is the [dkim] section.
type DKIM struct {
	// selector: the DKIM selector outgoing mail is signed with. Keys are
	// made by `skrytka dkim generate DOMAIN` into
	// data_dir/dkim/DOMAIN/SELECTOR.pem; a domain without a key sends
	// unsigned mail. Default "skrytka".
	Selector string `toml:"selector"`
}

// TLS is the [tls] section.
type TLS struct {
	// cert_file, key_file: PEM certificate chain and key, re-read on SIGHUP.
	// Both empty (default): a self-signed certificate for hostname is
	// generated once into data_dir.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// Auth is the [auth] section.
type Auth struct {
	// allow_plaintext: when passwords may travel without TLS: "never",
	// "loopback" (default) or "always".
	AllowPlaintext string `toml:"allow_plaintext"`
	// failure_delay: delay before the next login attempt after one failure
	// from the same address or for the same account; it doubles with each
	// further failure. Default "1s".
	FailureDelay Duration `toml:"failure_delay"`
	// max_failure_delay: cap of that delay. Default "1m".
	MaxFailureDelay Duration `toml:"max_failure_delay"`
	// failure_window: failures are forgotten after this long without a new
	// one. Default "15m".
	FailureWindow Duration `toml:"failure_window"`
	// cache_ttl: how long a password verified with argon2id is remembered
	// (as a keyed digest, in memory only) so the same account logging in
	// again with it skips argon2id. Default "1h"; "0" turns the cache off.
	CacheTTL Duration `toml:"cache_ttl"`
	// cache_size: accounts remembered at most (about 350 bytes each).
	// Default 10000.
	CacheSize int `toml:"cache_size"`
}

// Storage is the [storage] section.
type Storage struct {
	Backend string `toml:"backend"` // "sqlite" (default, embedded) or "postgres"
	DSN     string `toml:"dsn"`     // PostgreSQL connection string; required for "postgres"
}

// Limits is the [limits] section.
type Limits struct {
	// max_connections: open connections over all listeners. Default 2000.
	MaxConnections int `toml:"max_connections"`
	// max_connections_per_ip: open connections from one address (one /64
	// for IPv6). Default 20. Trusted networks are exempt.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// trusted_networks: exempt from the per-address connection cap and the
	// per-address login throttling (not from the per-account one).
	// Default ["127.0.0.0/8", "::1/128"].
	TrustedNetworks []Network `toml:"trusted_networks"`
}

// Log is the [log] section.
type Log struct {
	Format string `toml:"format"` // "text" (default) or "json"
	Level  string `toml:"level"`  // "debug", "info" (default), "warn" or "error"
}

// Network is an IP prefix in CIDR notation; a bare address means the
// address alone.
type Network struct{ netip.Prefix }

// UnmarshalText parses "10.0.0.0/8" or "192.0.2.1".
func (n *Network) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if p, err := netip.ParsePrefix(s); err == nil {
		n.Prefix = p.Masked()
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("bad network %q: want CIDR such as 10.0.0.0/8 or an address", s)
	}
	n.Prefix = netip.PrefixFrom(a, a.BitLen())
	return nil
}

// MarshalText writes the prefix in CIDR notation.
func (n Network) MarshalText() ([]byte, error) { return []byte(n.Prefix.String()), nil }

// Defaults returns the configuration used when a key is not set. It is also
// what `serve -demo` runs with.
func Defaults() Config {
	return Config{
		DataDir:    "./skrytka-data",
		Hostname:   "localhost",
		Domains:    []string{"localhost"},
		IMAP:       IMAP{Listen: "127.0.0.1:1143", TLSListen: "127.0.0.1:1993", AppendLimit: 50 << 20},
		POP3:       POP3{Listen: "127.0.0.1:1110", TLSListen: "127.0.0.1:1995", AfterDownload: "expunge"},
		SMTP:       SMTP{Listen: "127.0.0.1:2525", MaxMessageSize: 50 << 20, MaxRecipients: 100, RecipientDelimiter: "+", AuthChecks: true, DMARCPolicy: "annotate"},
		LMTP:       LMTP{Listen: "127.0.0.1:2424"},
		Submission: Submission{Listen: "127.0.0.1:1587", TLSListen: "127.0.0.1:1465"},
		Auth: Auth{
			AllowPlaintext:  string(auth.PlaintextLoopback),
			FailureDelay:    Duration(1e9),
			MaxFailureDelay: Duration(60e9),
			FailureWindow:   Duration(15 * 60e9),
			CacheTTL:        Duration(auth.DefaultCacheTTL),
			CacheSize:       auth.DefaultCacheSize,
		},
		Queue:   Queue{MaxAge: Duration(5 * 24 * 3600e9)},
		DKIM:    DKIM{Selector: "skrytka"},
		Storage: Storage{Backend: "sqlite"},
		Limits: Limits{
			MaxConnections:      2000,
			MaxConnectionsPerIP: 20,
			TrustedNetworks: []Network{
				{netip.MustParsePrefix("127.0.0.0/8")},
				{netip.MustParsePrefix("::1/128")},
			},
		},
		Log: Log{Format: "text", Level: "info"},
	}
}

// Error is a configuration problem. Its message is one line naming the
// file, the key and the cause.
type Error struct {
	File string // "" when the config did not come from a file
	Line int    // 0 when unknown
	Key  string // dotted key, e.g. "imap.listen"; "" for a syntax error
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the file at path over Defaults and validates the result.
// Every error is an *Error.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &Error{File: path, Msg: errors.Unwrap(err).Error()}
	}
	cfg, err := Parse(string(data), path)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Parse decodes TOML text over Defaults without validating; file is used
// in messages only.
func Parse(text, file string) (Config, error) {
	cfg := Defaults()
	// Keys present in the file replace the defaults wholesale, lists too.
	cfg.Domains, cfg.Limits.TrustedNetworks = nil, nil
	md, err := toml.Decode(text, &cfg)
	if err != nil {
		e := &Error{File: file, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Key, e.Msg = pe.Position.Line, pe.LastKey, pe.Message
		}
		e.Msg = strings.TrimPrefix(e.Msg, "toml: ")
		return Config{}, e
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return Config{}, &Error{File: file, Line: keyLine(text, k[len(k)-1]), Key: k.String(), Msg: "unknown key"}
	}
	def := Defaults()
	if !md.IsDefined("domains") {
		cfg.Domains = def.Domains
	}
	if !md.IsDefined("limits", "trusted_networks") {
		cfg.Limits.TrustedNetworks = def.Limits.TrustedNetworks
	}
	cfg.File = file
	return cfg, nil
}

// Validate checks every field and normalises a few (lower-case domains and
// addresses). The first problem is returned as an *Error.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &Error{File: c.File, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return bad("data_dir", "must not be empty")
	}
	if !validHostname(c.Hostname) {
		return bad("hostname", "%q is not a valid host name", c.Hostname)
	}
	if len(c.Domains) == 0 {
		return bad("domains", "must list at least one domain")
	}
	for i, d := range c.Domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if !validHostname(d) {
			return bad("domains", "%q is not a valid domain", c.Domains[i])
		}
		c.Domains[i] = d
	}
	for _, l := range []struct{ key, addr string }{
		{"imap.listen", c.IMAP.Listen}, {"imap.tls_listen", c.IMAP.TLSListen},
		{"pop3.listen", c.POP3.Listen}, {"pop3.tls_listen", c.POP3.TLSListen},
		{"smtp.listen", c.SMTP.Listen}, {"lmtp.listen", c.LMTP.Listen},
		{"submission.listen", c.Submission.Listen}, {"submission.tls_listen", c.Submission.TLSListen},
	} {
		if err := checkListen(l.addr); err != nil {
			return bad(l.key, "%v", err)
		}
	}
	if c.IMAP.AppendLimit <= 0 {
		return bad("imap.append_limit", "must be positive")
	}
	switch c.POP3.AfterDownload {
	case "expunge", "trash", "archive", "keep":
	default:
		return bad("pop3.after_download", "must be \"expunge\", \"trash\", \"archive\" or \"keep\", not %q", c.POP3.AfterDownload)
	}
	if c.POP3.LoginDelay < 0 || c.POP3.LoginDelay > Duration(24*3600e9) {
		return bad("pop3.login_delay", "must be between 0s and 1d")
	}
	if c.SMTP.MaxMessageSize <= 0 {
		return bad("smtp.max_message_size", "must be positive")
	}
	if c.SMTP.MaxRecipients < 1 {
		return bad("smtp.max_recipients", "must be at least 1")
	}
	if len(c.SMTP.RecipientDelimiter) > 1 || strings.ContainsAny(c.SMTP.RecipientDelimiter, "@\" \t") {
		return bad("smtp.recipient_delimiter", "must be one character other than @, quote or space, or empty")
	}
	switch c.SMTP.DMARCPolicy {
	case "annotate", "enforce":
	default:
		return bad("smtp.dmarc_policy", "must be \"annotate\" or \"enforce\", not %q", c.SMTP.DMARCPolicy)
	}
	aliases := make(map[string][]string, len(c.SMTP.Aliases))
	for from, to := range c.SMTP.Aliases {
		f := strings.ToLower(from)
		if !validAddress(f) {
			return bad("smtp.aliases", "%q is not an address", from)
		}
		if len(to) == 0 {
			return bad("smtp.aliases", "%q has no targets", from)
		}
		ts := make([]string, len(to))
		for i, t := range to {
			ts[i] = strings.ToLower(t)
			if !validAddress(ts[i]) {
				return bad("smtp.aliases", "target %q of %q is not an address", t, from)
			}
		}
		aliases[f] = ts
	}
	c.SMTP.Aliases = aliases
	catchall := make(map[string]string, len(c.SMTP.Catchall))
	for dom, to := range c.SMTP.Catchall {
		d := strings.ToLower(dom)
		if !c.IsLocalDomain(d) {
			return bad("smtp.catchall", "domain %q is not in domains", dom)
		}
		t := strings.ToLower(to)
		if !validAddress(t) {
			return bad("smtp.catchall", "target %q of %q is not an address", to, dom)
		}
		catchall[d] = t
	}
	c.SMTP.Catchall = catchall
	if c.TLS.CertFile == "" && c.TLS.KeyFile != "" {
		return bad("tls.cert_file", "must be set when tls.key_file is")
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile == "" {
		return bad("tls.key_file", "must be set when tls.cert_file is")
	}
	if _, err := auth.ParsePlaintextPolicy(c.Auth.AllowPlaintext); err != nil {
		return bad("auth.allow_plaintext", "%v", err)
	}
	if c.Auth.AllowPlaintext == "" {
		c.Auth.AllowPlaintext = string(auth.PlaintextLoopback)
	}
	if c.Auth.FailureDelay <= 0 {
		return bad("auth.failure_delay", "must be positive")
	}
	if c.Auth.MaxFailureDelay < c.Auth.FailureDelay {
		return bad("auth.max_failure_delay", "must be at least auth.failure_delay (%v)", c.Auth.FailureDelay)
	}
	if c.Auth.FailureWindow < c.Auth.MaxFailureDelay {
		return bad("auth.failure_window", "must be at least auth.max_failure_delay (%v)", c.Auth.MaxFailureDelay)
	}
	if c.Auth.CacheSize <= 0 {
		return bad("auth.cache_size", "must be positive (auth.cache_ttl = \"0\" turns the cache off)")
	}
	if c.Queue.MaxAge <= 0 {
		return bad("queue.max_age", "must be positive")
	}
	if err := checkListen(c.Queue.Smarthost); err != nil {
		return bad("queue.smarthost", "%v", err)
	}
	if c.Queue.SmarthostUser != "" && c.Queue.Smarthost == "" {
		return bad("queue.smarthost_user", "needs queue.smarthost")
	}
	if (c.Queue.SmarthostUser == "") != (c.Queue.SmarthostPasswordFile == "") {
		return bad("queue.smarthost_password_file", "set both queue.smarthost_user and queue.smarthost_password_file, or neither")
	}
	if !validHostname(c.DKIM.Selector) {
		return bad("dkim.selector", "%q is not a valid selector (letters, digits, hyphens, dots)", c.DKIM.Selector)
	}
	switch c.Storage.Backend {
	case "sqlite":
	case "postgres":
		if c.Storage.DSN == "" {
			return bad("storage.dsn", "must be set for backend \"postgres\"")
		}
	default:
		return bad("storage.backend", "must be \"sqlite\" or \"postgres\", not %q", c.Storage.Backend)
	}
	if c.Limits.MaxConnections < 1 {
		return bad("limits.max_connections", "must be at least 1")
	}
	if c.Limits.MaxConnectionsPerIP < 1 {
		return bad("limits.max_connections_per_ip", "must be at least 1")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "must be \"text\" or \"json\", not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be \"debug\", \"info\", \"warn\" or \"error\", not %q", c.Log.Level)
	}
	return nil
}

// IsLocalDomain reports whether mail for domain (lower-case) is local.
func (c *Config) IsLocalDomain(domain string) bool {
	for _, d := range c.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

// TrustedPrefixes returns limits.trusted_networks as netip prefixes.
func (c *Config) TrustedPrefixes() []netip.Prefix {
	ps := make([]netip.Prefix, len(c.Limits.TrustedNetworks))
	for i, n := range c.Limits.TrustedNetworks {
		ps[i] = n.Prefix
	}
	return ps
}

func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: want host:port such as 127.0.0.1:143", addr)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			return fmt.Errorf("bad host in %q", addr)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func validAddress(a string) bool {
	i := strings.LastIndexByte(a, '@')
	return i > 0 && i < len(a)-1 && !strings.ContainsAny(a, " \t\r\n<>") && validHostname(a[i+1:])
}

// keyLine finds the first line that assigns key, for messages; 0 if none.
func keyLine(text, key string) int {
	for i, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(line)
		for _, k := range []string{key, `"` + key + `"`} {
			if rest, ok := strings.CutPrefix(l, k); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
				return i + 1
			}
		}
	}
	return 0
}

// Keys lists every dotted key Config decodes, in declaration order.
func Keys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Network{}) {
				walk(prefix+tag+".", f.Type)
				continue
			}
			keys = append(keys, prefix+tag)
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return keys
}
