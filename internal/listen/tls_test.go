package listen

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeCert(t *testing.T, dir, host string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := GenerateSelfSigned(host, time.Now(), time.Hour*48)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// tlsEcho serves a TLS echo and returns its address.
func tlsEcho(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	go Serve(tls.NewListener(raw, cfg), func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
	return raw.Addr().String()
}

func peerCN(t *testing.T, c *tls.Conn) string {
	t.Helper()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "one.example")
	src, err := LoadFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src.ReloadOnSIGHUP(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	addr := tlsEcho(t, ServerConfig(src))
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	old := dial()
	if cn := peerCN(t, old); cn != "one.example" {
		t.Fatalf("first CN = %q", cn)
	}

	writeCert(t, dir, "two.example")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cn := peerCN(t, dial()); cn == "two.example" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The connection made before the reload still works.
	old.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(old).ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("old connection after reload: %q, %v", line, err)
	}

	// A broken file keeps the current certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o644)
	if err := src.Reload(); err == nil {
		t.Fatal("Reload of garbage succeeded")
	}
	if cn := peerCN(t, dial()); cn != "two.example" {
		t.Fatalf("after failed reload CN = %q", cn)
	}
}

func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadFiles(filepath.Join(dir, "missing.pem"), filepath.Join(dir, "k.pem"))
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("LoadFiles = %v, want error naming the file", err)
	}
}

func TestSelfSigned(t *testing.T) {
	dir := t.TempDir()
	src, err := SelfSigned(dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	leaf := src.Certificate().Leaf
	for _, h := range []string{"mail.example.org", "localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("not valid for %s: %v", h, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", SelfSignedKey))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// Generated once: a second call reuses it.
	src2, err := SelfSigned(dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(src2.Certificate().Leaf) {
		t.Error("second SelfSigned made a new certificate")
	}
	// A different hostname gets a new one.
	src3, err := SelfSigned(dir, "other.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if src3.Certificate().Leaf.VerifyHostname("other.example.org") != nil {
		t.Error("new hostname not covered")
	}

	// A client that trusts the certificate verifies it by DNS name and by IP.
	pool := x509.NewCertPool()
	pool.AddCert(src3.Certificate().Leaf)
	addr := tlsEcho(t, ServerConfig(src3))
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("verified dial as %s: %v", name, err)
		}
		c.Close()
	}
}

func TestMinTLS12(t *testing.T) {
	src, err := SelfSigned(t.TempDir(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsEcho(t, ServerConfig(src))
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}
