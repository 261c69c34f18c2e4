package outbound

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMKeyBits is the RSA key size for new DKIM keys: RFC 8301 §3.2 requires
// at least 1024 and recommends 2048. RSA rather than Ed25519 (RFC 8463),
// because many receivers still verify only RSA.
const DKIMKeyBits = 2048

// GenerateDKIMKey makes a DKIM signing key for domain and selector and
// returns the private key in PEM (PKCS #8) and the TXT record to publish
// at "<selector>._domainkey.<domain>" (the backing of `skrytka dkim
// generate`).
func GenerateDKIMKey() (keyPEM []byte, txtRecord string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, DKIMKeyBits)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub), nil
}

// DKIMRecordName is where the TXT record of a selector lives.
func DKIMRecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// ParseDKIMKey reads a PEM private key (PKCS #8 RSA or Ed25519, or PKCS #1
// RSA) into sign options for domain and selector, signing the header
// fields RFC 6376 §5.4.1 recommends.
func ParseDKIMKey(keyPEM []byte, domain, selector string) (*dkim.SignOptions, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("dkim key: no PEM block")
	}
	var signer crypto.Signer
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("dkim key: %w", err)
		}
		signer = k
	default:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("dkim key: %w", err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			signer = k
		case ed25519.PrivateKey:
			signer = k
		default:
			return nil, fmt.Errorf("dkim key: unsupported key type %T", k)
		}
	}
	return &dkim.SignOptions{
		Domain:   strings.ToLower(strings.TrimSuffix(domain, ".")),
		Selector: selector,
		Signer:   signer,
		HeaderKeys: []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
			"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
			"List-Subscribe", "List-Post", "List-Owner", "List-Archive", "Message-ID", "MIME-Version",
			"Content-Type", "Content-Transfer-Encoding"},
	}, nil
}
