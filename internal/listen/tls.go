package listen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// CertSource supplies the server certificate for each TLS handshake. It is
// the seam for other sources (ACME later): anything with GetCertificate.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfig returns the TLS configuration every listener uses: TLS 1.2
// at least, certificates from src.
func ServerConfig(src CertSource) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: src.GetCertificate,
	}
}

// FileSource serves a certificate and key read from PEM files. Reload
// re-reads them; handshakes in progress keep the certificate they got and
// established connections are not touched.
type FileSource struct {
	CertFile, KeyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadFiles reads a certificate chain and its key.
func LoadFiles(certFile, keyFile string) (*FileSource, error) {
	s := &FileSource{CertFile: certFile, KeyFile: keyFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files. On error the previous certificate stays.
func (s *FileSource) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("tls certificate: %s: %v", pe.Path, pe.Err)
		}
		return fmt.Errorf("tls certificate %s / key %s: %v", s.CertFile, s.KeyFile, err)
	}
	if len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			cert.Leaf = leaf
		}
	}
	s.cur.Store(&cert)
	return nil
}

// Certificate returns the current certificate.
func (s *FileSource) Certificate() *tls.Certificate { return s.cur.Load() }

// GetCertificate implements CertSource.
func (s *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// ReloadOnSIGHUP calls Reload each time the process gets SIGHUP, until ctx
// ends, logging the outcome. It returns at once; the watching runs in a
// goroutine.
func (s *FileSource) ReloadOnSIGHUP(ctx context.Context, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if err := s.Reload(); err != nil {
					log.Error("tls reload failed; keeping the old certificate", "err", err)
				} else {
					log.Info("tls certificate reloaded", "file", s.CertFile, "not_after", s.Certificate().Leaf.NotAfter)
				}
			}
		}
	}()
}

// Self-signed certificate file names, under dir/tls/.
const (
	SelfSignedCert = "selfsigned-cert.pem"
	SelfSignedKey  = "selfsigned-key.pem"
)

// SelfSigned returns a source for a self-signed certificate for hostname,
// also valid for "localhost" and 127.0.0.1 and ::1 (some clients match only
// DNS names, others only IPs). It is generated once into dir/tls/ and
// reused; it is made anew only when missing, unreadable, expiring within a
// day, or not valid for hostname.
func SelfSigned(dir, hostname string) (*FileSource, error) {
	tdir := filepath.Join(dir, "tls")
	certFile, keyFile := filepath.Join(tdir, SelfSignedCert), filepath.Join(tdir, SelfSignedKey)
	if s, err := LoadFiles(certFile, keyFile); err == nil {
		leaf := s.Certificate().Leaf
		if leaf != nil && time.Until(leaf.NotAfter) > 24*time.Hour && leaf.VerifyHostname(hostname) == nil {
			return s, nil
		}
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM, keyPEM, err := GenerateSelfSigned(hostname, time.Now(), 5*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	return LoadFiles(certFile, keyFile)
}

// GenerateSelfSigned makes an ECDSA P-256 certificate for hostname,
// localhost, 127.0.0.1 and ::1, valid from now for validity, and returns
// it and its key in PEM.
func GenerateSelfSigned(hostname string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Skrytka self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, n := range []string{hostname, "localhost"} {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if !contains(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path, so a crash never leaves a half-written key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
