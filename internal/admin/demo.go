package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
)

// DemoAddress is the account `serve -demo` creates.
const DemoAddress = "demo@localhost"

// DemoPasswordFile is where the demo password is kept, under the data
// directory, readable by the owner only.
const DemoPasswordFile = "demo-password"

// Demo is what EnsureDemo set up.
type Demo struct {
	Address  string
	Password string
	Created  bool   // false: an earlier run made the account
	File     string // the password file
}

// EnsureDemo makes sure the demo account exists in st and returns its
// password. The first run generates a password, writes it to
// dataDir/demo-password (mode 0600), creates the account and appends a
// welcome message to its INBOX. Later runs read the password back. If the
// file is gone or no longer matches (someone ran `user passwd`), a new
// password is set and saved.
func EnsureDemo(ctx context.Context, st store.Store, dataDir, hostname string) (Demo, error) {
	d := Demo{Address: DemoAddress, File: filepath.Join(dataDir, DemoPasswordFile)}
	if b, err := os.ReadFile(d.File); err == nil {
		d.Password = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return d, fmt.Errorf("demo password: %w", err)
	}
	acct, err := st.Account(ctx, d.Address)
	switch {
	case err == nil:
		if d.Password != "" && CheckPassword(d.Password) == nil && passwordMatches(acct, d.Password) {
			return d, nil
		}
		if d.Password, err = newDemoPassword(d.File); err != nil {
			return d, err
		}
		return d, SetPassword(ctx, st, d.Address, d.Password)
	case errors.Is(err, store.ErrNotFound):
	default:
		return d, err
	}
	if d.Password, err = newDemoPassword(d.File); err != nil {
		return d, err
	}
	acct, err = AddUser(ctx, st, d.Address, d.Password, nil)
	if err != nil {
		return d, err
	}
	d.Created = true
	return d, AppendWelcome(ctx, st, acct, hostname, time.Now())
}

func newDemoPassword(file string) (string, error) {
	pw := GeneratePassword()
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo password: %w", err)
	}
	// WriteFile keeps the mode of an existing file: make sure.
	if err := os.Chmod(file, 0o600); err != nil {
		return "", fmt.Errorf("demo password: %w", err)
	}
	return pw, nil
}

// GeneratePassword returns 16 random characters from an alphabet without
// look-alikes (about 90 bits).
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// AppendWelcome appends a short welcome message to the account's INBOX
// through the store's two-phase path (Stage, then Append).
func AppendWelcome(ctx context.Context, st store.Store, acct store.Account, hostname string, now time.Time) error {
	inbox, err := st.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		return fmt.Errorf("welcome message: %w", err)
	}
	msg := WelcomeMessage(acct.Address, hostname, now)
	staged, err := st.Stage(ctx, strings.NewReader(msg), 0)
	if err != nil {
		return fmt.Errorf("welcome message: %w", err)
	}
	if _, err := st.Append(ctx, acct.ID, inbox.ID, []store.AppendMessage{{Body: staged, InternalDate: now}}); err != nil {
		staged.Discard()
		return fmt.Errorf("welcome message: %w", err)
	}
	return nil
}

// WelcomeMessage is the RFC 5322 text of the demo's welcome message.
func WelcomeMessage(to, hostname string, now time.Time) string {
	lines := []string{
		"Return-Path: <postmaster@" + hostname + ">",
		"From: Skrytka <postmaster@" + hostname + ">",
		"To: <" + to + ">",
		"Subject: Welcome to Skrytka",
		"Date: " + now.Format(time.RFC1123Z),
		"Message-ID: <welcome." + fmt.Sprint(now.UnixNano()) + "@" + hostname + ">",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		"Hello,",
		"",
		"this message sits in the INBOX of " + to + " on a Skrytka demo server.",
		"Your mail client reached it, so IMAP (or POP3) works.",
		"",
		"Try sending a message to " + to + " over SMTP, create folders,",
		"move this message around, or connect a second client and watch",
		"changes show up on both.",
		"",
		"-- Skrytka",
		"",
	}
	return strings.Join(lines, "\r\n")
}

func passwordMatches(acct store.Account, pw string) bool {
	return auth.VerifyPassword(acct.PasswordHash, pw)
}
