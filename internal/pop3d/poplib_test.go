package pop3d

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
)

// poplibScript drives the server with Python's poplib, a client no one
// here wrote, and prints what it saw as JSON. The second session runs over
// STLS, verifying the test certificate.
const poplibScript = `
import json, os, poplib, ssl, sys
host, port = os.environ["POP_HOST"], int(os.environ["POP_PORT"])
user, pw = os.environ["POP_USER"], os.environ["POP_PASS"]
out = {}
p = poplib.POP3(host, port, timeout=30)
out["welcome"] = p.getwelcome().decode()
out["capa"] = sorted(p.capa().keys())
p.user(user)
p.pass_(pw)
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["uidl1"] = p.uidl(1).decode()
out["top"] = b"\r\n".join(p.top(1, 1)[1]).decode()
out["retr"] = []
for i in range(1, out["stat"][0] + 1):
    resp, lines, octets = p.retr(i)
    out["retr"].append({"resp": resp.decode(), "body": b"\r\n".join(lines).decode() + "\r\n", "octets": octets})
p.dele(1)
p.rset()
p.dele(1)
p.noop()
out["quit"] = p.quit().decode()

ctx = ssl.create_default_context(cafile=os.environ["POP_CA"])
ctx.check_hostname = True
p = poplib.POP3(host, port, timeout=30)
p.stls(context=ctx)
p.user(user)
p.pass_(pw)
out["uidl_after"] = [l.decode() for l in p.uidl()[1]]
out["stat_after"] = list(p.stat())
p.quit()
json.dump(out, sys.stdout)
`

type poplibResult struct {
	Welcome string   `json:"welcome"`
	Capa    []string `json:"capa"`
	Stat    []int64  `json:"stat"`
	List    []string `json:"list"`
	UIDL    []string `json:"uidl"`
	UIDL1   string   `json:"uidl1"`
	Top     string   `json:"top"`
	Retr    []struct {
		Resp   string `json:"resp"`
		Body   string `json:"body"`
		Octets int64  `json:"octets"`
	} `json:"retr"`
	Quit      string   `json:"quit"`
	UIDLAfter []string `json:"uidl_after"`
	StatAfter []int64  `json:"stat_after"`
}

func TestPythonPoplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t, func(o *Options) { o.Plaintext = auth.PlaintextAlways })
	var long strings.Builder
	long.WriteString("From: big@example.org\r\nSubject: big\r\n\r\n")
	for i := range 20000 {
		fmt.Fprintf(&long, "line %05d of a long message, some of them start with dots:\r\n.%d\r\n", i, i)
	}
	bodies := []string{crlf(msg1), crlf(msg2), long.String(), crlf(msg3)}
	for _, b := range bodies {
		deliver(t, e.st, e.acct, e.inbox.ID, b)
	}
	stored := e.storedMessages()

	// The CA file for STLS: the test certificate itself.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, e.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(e.addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", poplibScript)
	cmd.Env = append(os.Environ(), "POP_HOST="+host, "POP_PORT="+port, "POP_USER="+e.acct.Address,
		"POP_PASS="+testPassword, "POP_CA="+caFile)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("poplib: %v\n%s", err, stderr)
	}
	var r poplibResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}

	if r.Welcome != "+OK pop.example.org Skrytka POP3 server ready" {
		t.Errorf("welcome %q", r.Welcome)
	}
	for _, c := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "STLS"} {
		if !contains(r.Capa, c) {
			t.Errorf("poplib sees CAPA %q without %s", r.Capa, c)
		}
	}
	var total int64
	for _, m := range stored {
		total += m.Size
	}
	if len(r.Stat) != 2 || r.Stat[0] != 4 || r.Stat[1] != total {
		t.Errorf("STAT %v, want [4 %d]", r.Stat, total)
	}
	for i, m := range stored {
		if want := fmt.Sprintf("%d %d", i+1, m.Size); i >= len(r.List) || r.List[i] != want {
			t.Errorf("LIST line %d = %q, want %q", i, r.List, want)
		}
		if want := fmt.Sprintf("%d %s", i+1, uidl(m.ID)); i >= len(r.UIDL) || r.UIDL[i] != want {
			t.Errorf("UIDL line %d = %q, want %q", i, r.UIDL, want)
		}
		if i >= len(r.Retr) {
			t.Fatalf("poplib retrieved %d messages", len(r.Retr))
		}
		got := r.Retr[i]
		if got.Body != bodies[i] {
			t.Errorf("RETR %d: content differs (%d vs %d bytes)", i+1, len(got.Body), len(bodies[i]))
		}
		// poplib counts the octets it received, unstuffed, with CRLF.
		if got.Octets != m.Size || got.Resp != fmt.Sprintf("+OK %d octets", m.Size) {
			t.Errorf("RETR %d: %q, poplib counted %d octets, LIST said %d", i+1, got.Resp, got.Octets, m.Size)
		}
	}
	if r.UIDL1 != "+OK 1 "+uidl(stored[0].ID) {
		t.Errorf("UIDL 1 = %q", r.UIDL1)
	}
	if r.Top != "From: a@example.org\r\nSubject: one\r\n\r\nfirst body" {
		t.Errorf("TOP 1 1 = %q", r.Top)
	}
	if r.Quit != "+OK pop.example.org POP3 server signing off (1 messages deleted)" {
		t.Errorf("QUIT = %q", r.Quit)
	}
	var wantAfter []string
	for i, m := range stored[1:] {
		wantAfter = append(wantAfter, fmt.Sprintf("%d %s", i+1, uidl(m.ID)))
	}
	if strings.Join(r.UIDLAfter, "|") != strings.Join(wantAfter, "|") {
		t.Errorf("second session UIDL %q, want %q", r.UIDLAfter, wantAfter)
	}
	if len(r.StatAfter) != 2 || r.StatAfter[0] != 3 || r.StatAfter[1] != total-stored[0].Size {
		t.Errorf("second session STAT %v", r.StatAfter)
	}
	if uids := e.inboxUIDs(); len(uids) != 3 || uids[0] != stored[1].UID {
		t.Errorf("store after poplib: %v", uids)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
