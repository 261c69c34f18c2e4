package testharness

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
)

// TestLineConnTLS drives a tiny STARTTLS-style server with LineConn.
func TestLineConnTLS(t *testing.T) {
	srvCfg, cliCfg := TLSConfigs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("+OK hello\r\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(line) != "STLS" {
			c.Write([]byte("-ERR want STLS\r\n"))
			return
		}
		c.Write([]byte("+OK go ahead\r\n"))
		tc := tls.Server(c, srvCfg)
		r := bufio.NewReader(tc)
		line, _ = r.ReadString('\n')
		tc.Write([]byte("+OK secure " + line))
		tc.Close()
	}()
	lc := Dial(t, ln.Addr().String())
	lc.Expect("+OK hello")
	lc.Send("STLS")
	lc.Expect("+OK go ahead")
	lc.StartTLS(cliCfg)
	lc.Send("PING")
	if got := lc.ReadLine(); got != "+OK secure PING" {
		t.Fatalf("got %q", got)
	}
	lc.ExpectClosed()
}

func TestFreeAddrsDistinct(t *testing.T) {
	addrs := FreeAddrs(t, 5)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("duplicate %s", a)
		}
		seen[a] = true
	}
}
