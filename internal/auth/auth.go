// Package auth checks passwords for every protocol front end: argon2id
// hashing in PHC string format, constant-time verification, and the shared
// throttling of failed logins (per remote address and per account).
//
// It depends on package store for account lookup only; it knows no wire
// protocol. Front ends turn ErrFailed into their own reply.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/skrytka/skrytka/internal/store"
)

// ErrFailed is returned for a wrong address or password. It never says
// which of the two was wrong.
var ErrFailed = errors.New("auth: authentication failed")

// Argon2id parameters (RFC 9106 §4, second recommended option: 64 MiB is
// too much for a server facing many logins, so memory is 19 MiB with t=2,
// the OWASP minimum configuration for argon2id).
const (
	argonTime    = 2
	argonMemKiB  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns a PHC-format argon2id hash of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a hash made by
// HashPassword (with whatever parameters the hash records).
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || t == 0 || p == 0 || mem > 1<<21 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Authenticator checks credentials against the store.
type Authenticator struct {
	Store store.Store
}

// Authenticate checks address and password and returns the account.
// remote is the client's IP address (for throttling and logs).
func (a *Authenticator) Authenticate(ctx context.Context, remote, address, password string) (store.Account, error) {
	acct, err := a.Store.Account(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check so that timing does not
		// reveal which addresses exist.
		VerifyPassword(dummyHash, password)
		return store.Account{}, ErrFailed
	}
	if err != nil {
		return store.Account{}, err
	}
	if !VerifyPassword(acct.PasswordHash, password) {
		return store.Account{}, ErrFailed
	}
	return acct, nil
}

var dummyHash, _ = HashPassword("skrytka-dummy-password")
