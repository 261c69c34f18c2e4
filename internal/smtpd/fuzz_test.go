package smtpd

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession sends arbitrary bytes to a live server (MX and LMTP, over a
// real socket, on the real store) after a valid prefix, and checks that
// the server never panics, answers only with well-formed reply lines, and
// ends the session when told to (or on its own limits) without hanging.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@skrytka.test>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.org> SIZE=10 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<alice+t@skrytka.test>\r\nBDAT 5 LAST\r\nabcde",
		"HELO x\r\nRSET\r\nNOOP\r\nVRFY alice\r\nMAIL FROM:<>\r\nRCPT TO:<\"q q\"@skrytka.test>\r\n",
		"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<team@skrytka.test>\r\nDATA\r\n\r\n.\r\n",
		"EHLO x\r\nBDAT 4294967295\r\n",
		"EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\nSTARTTLS\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@[1.2.3.4]>\r\nRCPT TO:<@a,@b:c@skrytka.test>\r\n",
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	configure := func(o *Options) {
		o.CommandTimeout = 500 * time.Millisecond
		o.MaxMessageBytes = 64 << 10
	}
	mx := newEnv(f, ModeMX, configure)
	lmtp := newEnv(f, ModeLMTP, configure)
	f.Fuzz(func(t *testing.T, input string, useLMTP bool) {
		e := mx
		if useLMTP {
			e = lmtp
		}
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		go func() {
			io.WriteString(c, input+"\r\n.\r\nQUIT\r\n")
		}()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("session did not end")
				}
				break
			}
			if !replyLine.MatchString(line) || !strings.HasSuffix(line, "\r\n") {
				t.Fatalf("malformed reply line %q", line)
			}
		}
		if n := e.srv.Panics(); n != 0 {
			t.Fatalf("%d panics", n)
		}
	})
}
