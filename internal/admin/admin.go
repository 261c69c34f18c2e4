// Package admin holds the account operations behind the `skrytka user`
// commands and `serve -demo`: add, change password, delete and list
// accounts, and set up the demo account with its welcome message; and the
// admin socket through which those commands (and `skrytka queue`) reach a
// running server. The CLI is a thin shell over it and tests call the same
// functions.
//
// It works on any store.Store and never imports a backend; it prints
// nothing (callers decide what a person sees). Invariants: addresses are
// stored lower-case; passwords are only ever kept as argon2id hashes,
// except the demo password, which is kept in a 0600 file in the data
// directory so that a second demo run can show it again.
package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// Password length bounds (bytes). The upper bound keeps argon2 input and
// protocol lines reasonable.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 1024
)

// ErrBadAddress and ErrBadPassword are returned for input the CLI should
// reject with a usage error.
var (
	ErrBadAddress  = errors.New("bad address")
	ErrBadPassword = errors.New("bad password")
	ErrBadPolicy   = errors.New("bad policy")
)

// NormalizeAddress checks that address looks like local@domain and returns
// it lower-case. When domains is not empty, the domain must be one of them.
func NormalizeAddress(address string, domains []string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(address))
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || len(a) > 254 || !utf8.ValidString(a) {
		return "", fmt.Errorf("%w %q: want local@domain", ErrBadAddress, address)
	}
	for _, r := range a {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[]\,;:"`, r) {
			return "", fmt.Errorf("%w %q: contains %q", ErrBadAddress, address, r)
		}
	}
	if len(domains) > 0 {
		dom := a[at+1:]
		ok := false
		for _, d := range domains {
			ok = ok || d == dom
		}
		if !ok {
			return "", fmt.Errorf("%w %q: domain %q is not in the config's domains %q", ErrBadAddress, address, dom, domains)
		}
	}
	return a, nil
}

// CheckPassword enforces the password rules: MinPasswordBytes to
// MaxPasswordBytes of valid UTF-8 without control characters (they cannot
// be typed into every client).
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordBytes:
		return fmt.Errorf("%w: at least %d characters", ErrBadPassword, MinPasswordBytes)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: at most %d bytes", ErrBadPassword, MaxPasswordBytes)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadPassword)
	}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: contains a control character", ErrBadPassword)
		}
	}
	return nil
}

// AddUser creates an account with the given password. It returns
// store.ErrExists if the address is taken.
func AddUser(ctx context.Context, st store.Store, address, password string, domains []string) (store.Account, error) {
	addr, err := NormalizeAddress(address, domains)
	if err != nil {
		return store.Account{}, err
	}
	if err := CheckPassword(password); err != nil {
		return store.Account{}, err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return store.Account{}, err
	}
	acct, err := st.CreateAccount(ctx, addr, hash)
	if err != nil {
		return store.Account{}, fmt.Errorf("create %s: %w", addr, err)
	}
	return acct, nil
}

// SetPassword changes an account's password. store.ErrNotFound if there
// is no such account.
func SetPassword(ctx context.Context, st store.Store, address, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	acct, err := st.Account(ctx, strings.ToLower(strings.TrimSpace(address)))
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	return st.SetPasswordHash(ctx, acct.ID, hash)
}

// DeleteUser removes an account with all its mail. store.ErrNotFound if
// there is no such account.
func DeleteUser(ctx context.Context, st store.Store, address string) error {
	acct, err := st.Account(ctx, strings.ToLower(strings.TrimSpace(address)))
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	return st.DeleteAccount(ctx, acct.ID)
}

// SetDownloadPolicy sets an account's own POP3 after-download policy
// ("expunge", "trash", "archive" or "keep"), or clears it with "" or
// "default" so that the config's pop3.after_download applies.
func SetDownloadPolicy(ctx context.Context, st store.Store, address, policy string) error {
	switch policy {
	case "default":
		policy = ""
	case "", "expunge", "trash", "archive", "keep":
	default:
		return fmt.Errorf("%w %q: want expunge, trash, archive, keep or default", ErrBadPolicy, policy)
	}
	acct, err := st.Account(ctx, strings.ToLower(strings.TrimSpace(address)))
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	return st.SetDownloadPolicy(ctx, acct.ID, policy)
}

// ParseQuota reads a storage limit: a number of bytes with an optional
// K, M, G or T suffix (powers of 1024), or "none" (or 0) for no limit.
func ParseQuota(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "NONE" {
		return 0, nil
	}
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad quota %q: want bytes with an optional K, M, G or T suffix, or none", s)
	}
	return v * mult, nil
}

// SetQuota sets an account's storage limit in bytes (0: none). It applies
// to new mail from then on; mail already stored stays.
func SetQuota(ctx context.Context, st store.Store, address string, bytes int64) error {
	acct, err := st.Account(ctx, strings.ToLower(strings.TrimSpace(address)))
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	return st.SetQuota(ctx, acct.ID, bytes)
}

// SystemDomain holds accounts Skrytka makes for itself (the outbound
// queue's); ListUsers leaves them out. The .invalid TLD (RFC 2606) is
// never a real mail domain.
const SystemDomain = "@skrytka.invalid"

// UserInfo is one line of ListUsers.
type UserInfo struct {
	Address        string
	UsedBytes      int64
	QuotaBytes     int64  // 0: unlimited
	DownloadPolicy string // "": the config's pop3.after_download
}

// ListUsers returns all accounts sorted by address.
func ListUsers(ctx context.Context, st store.Store) ([]UserInfo, error) {
	accts, err := st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(accts))
	for _, a := range accts {
		if strings.HasSuffix(a.Address, SystemDomain) {
			continue
		}
		out = append(out, UserInfo{Address: a.Address, UsedBytes: a.UsedBytes, QuotaBytes: a.QuotaBytes, DownloadPolicy: a.DownloadPolicy})
	}
	sortUsers(out)
	return out, nil
}

func sortUsers(u []UserInfo) {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j].Address < u[j-1].Address; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
}
