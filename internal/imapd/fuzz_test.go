package imapd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// bytesConn is a net.Conn that reads a fixed input and discards output,
// so a whole session can be fuzzed without sockets.
type bytesConn struct {
	r   *bytes.Reader
	out io.Writer
}

func (c *bytesConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *bytesConn) Close() error                { return nil }
func (c *bytesConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 143} }
func (c *bytesConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *bytesConn) SetDeadline(t time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzSession runs arbitrary input through a session that is already
// logged in, with INBOX selected for inputs that start with "sel ". The
// server must neither panic nor hang, and every byte it writes must be
// lines ending in CRLF.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"a CAPABILITY\r\n",
		"a LIST \"\" *\r\na LSUB \"\" %\r\n",
		"a CREATE x/y\r\na RENAME x z\r\na DELETE z\r\n",
		"a STATUS INBOX (MESSAGES UIDNEXT SIZE)\r\n",
		"a APPEND INBOX (\\Seen) {5+}\r\nhello\r\n",
		"sel a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)] BODYSTRUCTURE ENVELOPE BINARY.SIZE[1])\r\n",
		"sel a UID SEARCH RETURN (MIN MAX COUNT) OR FROM a (SUBJECT b NOT SEEN)\r\n",
		"sel a STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Deleted)\r\na EXPUNGE\r\n",
		"sel a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)\r\n",
		"sel a COPY 1 Trash\r\na MOVE 1 Archive\r\n",
		"a IDLE\r\nDONE\r\n",
		"a ENABLE QRESYNC\r\na SELECT INBOX (QRESYNC (1 1 1:5))\r\n",
		"a SEARCH $\r\n",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% *) RETURN (STATUS (MESSAGES) CHILDREN)\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	st, err := embedded.Open(ctx, f.TempDir(), embedded.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	acct, err := st.CreateAccount(ctx, testUser, "x")
	if err != nil {
		f.Fatal(err)
	}
	inbox, _ := st.Mailbox(ctx, acct.ID, "INBOX")
	for _, m := range []string{mimeMsg, "Subject: x\r\n\r\ny\r\n"} {
		staged, err := st.Stage(ctx, strings.NewReader(m), 0)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := st.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: staged}}); err != nil {
			f.Fatal(err)
		}
	}
	srv := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoginDelay: -1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		if bytes.HasPrefix(in, []byte("sel ")) {
			in = append([]byte("s0 SELECT INBOX\r\n"), in[4:]...)
		}
		var out bytes.Buffer
		c := srv.newConn(&bytesConn{r: bytes.NewReader(in), out: &out})
		sub, err := st.Subscribe(ctx, acct.ID)
		if err != nil {
			t.Fatal(err)
		}
		c.sub, c.acct, c.state = sub, acct, stateAuth
		done := make(chan struct{})
		go func() {
			c.serve()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("session hung on %q", in)
		}
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("panic on %q", in)
		}
		resp := out.Bytes()
		if len(resp) > 0 && !bytes.HasSuffix(resp, []byte("\r\n")) {
			t.Fatalf("response does not end in CRLF: %q", resp[max(0, len(resp)-200):])
		}
	})
}
