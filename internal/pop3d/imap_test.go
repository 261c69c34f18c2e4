package pop3d

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/skrytka/skrytka/internal/imapd"
)

// startIMAP runs Skrytka's IMAP server over the same store.
func (e *env) startIMAP() string {
	e.t.Helper()
	srv := imapd.New(imapd.Options{Store: e.st, Auth: e.srv.opts.Auth, Logger: testLogger(e.t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	e.t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// expungeLog records untagged EXPUNGEs an IMAP client receives.
type expungeLog struct {
	mu   sync.Mutex
	seqs []uint32
}

func (l *expungeLog) add(seq uint32) {
	l.mu.Lock()
	l.seqs = append(l.seqs, seq)
	l.mu.Unlock()
}

func (l *expungeLog) get() []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seqs)
}

func (e *env) imapLogin(addr string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(e.acct.Address, testPassword).Wait(); err != nil {
		e.t.Fatalf("IMAP login: %v", err)
	}
	return c
}

// TestIMAPCoherence: a POP3 deletion arrives as untagged EXPUNGEs in an IMAP
// session idling on INBOX; a message appended over IMAP shows up in the
// next POP3 session; IMAP flag changes leave UIDLs alone; \Seen from RETR
// shows in IMAP.
func TestIMAPCoherence(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MarkSeenOnRetr = true })
	for _, m := range []string{msg1, msg2, msg3} {
		deliver(t, e.st, e.acct, e.inbox.ID, m)
	}
	imapAddr := e.startIMAP()
	var expunges expungeLog
	ic := e.imapLogin(imapAddr, &imapclient.UnilateralDataHandler{Expunge: expunges.add})
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	// Flags set over IMAP do not change UIDLs.
	uidlsOf := func(c *client) []string {
		c.cmd("UIDL").expectPrefix("+OK")
		return c.lines()
	}
	p := e.login()
	before := uidlsOf(p)
	p.cmd("QUIT").expectPrefix("+OK")
	p.expectClosed()
	err := ic.Store(imap.SeqSetNum(1, 2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Work"}}, nil).Close()
	if err != nil {
		t.Fatal(err)
	}

	idle, err := ic.Idle()
	if err != nil {
		t.Fatal(err)
	}
	p = e.login()
	if got := uidlsOf(p); strings.Join(got, "|") != strings.Join(before, "|") {
		t.Fatalf("UIDLs changed after IMAP STORE: %q -> %q", before, got)
	}
	p.cmd("RETR 3").expectPrefix("+OK")
	p.multiline()
	p.cmd("DELE 1").expectPrefix("+OK")
	p.cmd("DELE 2").expectPrefix("+OK")
	p.cmd("QUIT").expect("+OK pop.example.org POP3 server signing off (2 messages deleted)")
	p.expectClosed()
	waitFor(t, "EXPUNGE in the IDLE session", func() bool { return len(expunges.get()) == 2 })
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// Expunging 1 and 2 in one go: "* 1 EXPUNGE" twice, or 2 then 1.
	if got := expunges.get(); !slices.Equal(got, []uint32{1, 1}) && !slices.Equal(got, []uint32{2, 1}) {
		t.Fatalf("EXPUNGE sequence numbers %v", got)
	}
	msgs, err := ic.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) || !slices.Contains(msgs[0].Flags, imap.FlagFlagged) {
		t.Fatalf("IMAP sees %+v; want one message with \\Seen (RETR) and \\Flagged", msgs)
	}

	// A message appended over IMAP appears in the next POP3 session.
	const appended = "From: imap@example.org\r\nSubject: via IMAP\r\n\r\nhello from IMAP\r\n"
	ac := ic.Append("INBOX", int64(len(appended)), nil)
	if _, err := ac.Write([]byte(appended)); err != nil {
		t.Fatal(err)
	}
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	p = e.login()
	p.cmd("STAT").expect("+OK 2 " + itoa(len(crlf(msg3))+len(appended)))
	p.cmd("RETR 2").expect("+OK " + itoa(len(appended)) + " octets")
	if got := unstuff(p.multiline()); got != appended {
		t.Fatalf("RETR of the IMAP message = %q", got)
	}
	p.cmd("QUIT").expectPrefix("+OK")
	if err := ic.Logout().Wait(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("logout: %v", err)
	}
}

// TestIMAPSeesPolicies: what each after-download policy looks like from
// IMAP: trash and archive move the messages (EXPUNGE in INBOX, the message
// in the other folder), keep changes nothing IMAP can see.
func TestIMAPSeesPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy  Policy
		folder  string // where IMAP finds the deleted message; "" = INBOX still
		inInbox uint32
	}{
		{PolicyExpunge, "", 1},
		{PolicyTrash, "Trash", 1},
		{PolicyArchive, "Archive", 1},
		{PolicyKeep, "", 2},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.AfterDownload = tc.policy })
			deliver(t, e.st, e.acct, e.inbox.ID, msg1)
			deliver(t, e.st, e.acct, e.inbox.ID, msg2)
			ic := e.imapLogin(e.startIMAP(), nil)
			p := e.login()
			p.cmd("DELE 1").expectPrefix("+OK")
			p.cmd("QUIT").expectPrefix("+OK")
			p.expectClosed()

			sel, err := ic.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sel.NumMessages != tc.inInbox {
				t.Fatalf("IMAP INBOX has %d messages, want %d", sel.NumMessages, tc.inInbox)
			}
			if tc.policy == PolicyKeep {
				msgs, err := ic.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
				if err != nil {
					t.Fatal(err)
				}
				// \Recent is this IMAP session's own (rev1); nothing else
				// may show: no \Deleted, no \Seen, no "downloaded" flag.
				if len(msgs) != 1 || len(slices.DeleteFunc(msgs[0].Flags, func(f imap.Flag) bool { return f == `\Recent` })) != 0 {
					t.Fatalf("kept message shows flags %q over IMAP, want none", msgs[0].Flags)
				}
			}
			if tc.folder != "" {
				sel, err := ic.Select(tc.folder, nil).Wait()
				if err != nil {
					t.Fatal(err)
				}
				if sel.NumMessages != 1 {
					t.Fatalf("%s has %d messages, want 1", tc.folder, sel.NumMessages)
				}
				msgs, err := ic.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.Subject != "one" {
					t.Fatalf("%s holds %+v, want message one", tc.folder, msgs)
				}
			}
		})
	}
}
