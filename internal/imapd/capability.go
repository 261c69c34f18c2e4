package imapd

import (
	"strconv"
)

// capWhen says when a capability is advertised.
type capWhen uint8

const (
	capAlways    capWhen = iota
	capPreTLS            // before TLS, when STARTTLS is configured
	capNoPlain           // plaintext login not allowed now
	capPlainOK           // plaintext login allowed now
	capAfterAuth         // only once logged in
)

// capabilityList is every capability the server may advertise, each with
// the RFC defining it. Only capabilities that work end to end and are
// covered by tests belong here.
var capabilityList = []struct {
	name string
	when capWhen
}{
	{"IMAP4rev1", capAlways},          // RFC 3501
	{"IMAP4rev2", capAlways},          // RFC 9051
	{"STARTTLS", capPreTLS},           // RFC 9051 §6.2.1
	{"LOGINDISABLED", capNoPlain},     // RFC 9051 §6.2.3
	{"AUTH=PLAIN", capPlainOK},        // RFC 4616, RFC 9051 §6.2.2
	{"SASL-IR", capAlways},            // RFC 4959
	{"ENABLE", capAlways},             // RFC 5161
	{"ID", capAlways},                 // RFC 2971
	{"LITERAL+", capAlways},           // RFC 7888
	{"NAMESPACE", capAlways},          // RFC 2342
	{"IDLE", capAlways},               // RFC 2177
	{"UNSELECT", capAlways},           // RFC 3691
	{"CHILDREN", capAlways},           // RFC 3348
	{"UIDPLUS", capAlways},            // RFC 4315
	{"MOVE", capAlways},               // RFC 6851
	{"SPECIAL-USE", capAlways},        // RFC 6154
	{"CREATE-SPECIAL-USE", capAlways}, // RFC 6154 §3
	{"LIST-EXTENDED", capAlways},      // RFC 5258
	{"LIST-STATUS", capAlways},        // RFC 5819
	{"STATUS=SIZE", capAlways},        // RFC 8438
	{"UTF8=ACCEPT", capAlways},        // RFC 6855
	{"APPENDLIMIT", capAlways},        // RFC 7889 (with "=<n>")
	{"ESEARCH", capAlways},            // RFC 4731
	{"SEARCHRES", capAlways},          // RFC 5182
	{"BINARY", capAlways},             // RFC 3516
	{"CONDSTORE", capAlways},          // RFC 7162 §3.1
	{"QRESYNC", capAlways},            // RFC 7162 §3.2
	{"MULTIAPPEND", capAlways},        // RFC 3502
	{"QUOTA", capAlways},              // RFC 9208 (quota.go)
	{"QUOTA=RES-STORAGE", capAlways},  // RFC 9208
	{"PREVIEW", capAlways},            // RFC 8970 (fetch.go)
	{"SORT", capAlways},               // RFC 5256 (sort.go)
	{"SORT=DISPLAY", capAlways},       // RFC 5957
}

// appendCaps appends the space-separated capability list for this
// connection's current state.
func (c *conn) appendCaps(b []byte) []byte {
	plainOK := c.plaintextAllowed()
	first := true
	for _, cp := range capabilityList {
		switch cp.when {
		case capPreTLS:
			if c.isTLS || c.srv.opts.TLSConfig == nil || c.state != stateNotAuth {
				continue
			}
		case capNoPlain:
			if plainOK || c.state != stateNotAuth {
				continue
			}
		case capPlainOK:
			if !plainOK || c.state != stateNotAuth {
				continue
			}
		case capAfterAuth:
			if c.state == stateNotAuth {
				continue
			}
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, cp.name...)
		if cp.name == "APPENDLIMIT" {
			b = append(b, '=')
			b = strconv.AppendInt(b, c.srv.opts.AppendLimit, 10)
		}
	}
	return b
}

// capsCode returns "CAPABILITY ..." for a response code.
func (c *conn) capsCode() string {
	return string(c.appendCaps([]byte("CAPABILITY ")))
}

func (c *conn) plaintextAllowed() bool {
	return c.srv.opts.Plaintext.Allowed(c.netConn().RemoteAddr(), c.isTLS)
}

// cmdCapability: RFC 9051 §6.1.1.
func cmdCapability(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	c.out = append(c.out[:0], "* CAPABILITY "...)
	c.out = c.appendCaps(c.out)
	c.send(c.out)
	return c.ok(cmd, "", "CAPABILITY completed")
}
