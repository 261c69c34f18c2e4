package admin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skrytka/skrytka/internal/admin"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/testharness"
)

func TestNormalizeAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		domains  []string
		ok       bool
	}{
		{"Alice@Example.ORG", "alice@example.org", nil, true},
		{" bob@example.org ", "bob@example.org", []string{"example.org"}, true},
		{"bob@other.org", "", []string{"example.org"}, false},
		{"no-at-sign", "", nil, false},
		{"@example.org", "", nil, false},
		{"alice@", "", nil, false},
		{"a b@example.org", "", nil, false},
		{"a<b@example.org", "", nil, false},
		{"a\x00b@example.org", "", nil, false},
	} {
		got, err := admin.NormalizeAddress(tc.in, tc.domains)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, admin.ErrBadAddress) {
			t.Errorf("error %v is not ErrBadAddress", err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for pw, ok := range map[string]bool{
		"12345678": true, "correct horse": true, "пароль-пароль": true,
		"1234567": false, "": false, "tab\there!": false, string(make([]byte, 2000)): false, "bad\xffutf8!": false,
	} {
		if err := admin.CheckPassword(pw); (err == nil) != ok {
			t.Errorf("CheckPassword(%q) = %v", pw, err)
		}
	}
}

func TestUserLifecycle(t *testing.T) {
	st := testharness.EmbeddedStore(t)
	ctx := context.Background()
	acct, err := admin.AddUser(ctx, st, "Alice@Example.org", "first-password", []string{"example.org"})
	if err != nil || acct.Address != "alice@example.org" {
		t.Fatalf("AddUser = %+v, %v", acct, err)
	}
	if !auth.VerifyPassword(acct.PasswordHash, "first-password") {
		t.Fatal("stored hash does not verify")
	}
	if _, err := admin.AddUser(ctx, st, "alice@example.org", "first-password", nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := admin.SetPassword(ctx, st, "ALICE@example.org", "second-password"); err != nil {
		t.Fatal(err)
	}
	a, _ := st.Account(ctx, "alice@example.org")
	if !auth.VerifyPassword(a.PasswordHash, "second-password") || auth.VerifyPassword(a.PasswordHash, "first-password") {
		t.Fatal("password not changed")
	}
	admin.AddUser(ctx, st, "aaron@example.org", "some-password", nil)
	users, err := admin.ListUsers(ctx, st)
	if err != nil || len(users) != 2 || users[0].Address != "aaron@example.org" {
		t.Fatalf("ListUsers = %+v, %v", users, err)
	}
	if err := admin.SetDownloadPolicy(ctx, st, "alice@example.org", "keep"); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetDownloadPolicy(ctx, st, "alice@example.org", "shred"); !errors.Is(err, admin.ErrBadPolicy) {
		t.Fatalf("bad policy: %v", err)
	}
	if a, _ := st.Account(ctx, "alice@example.org"); a.DownloadPolicy != "keep" {
		t.Fatalf("policy = %q", a.DownloadPolicy)
	}
	admin.SetDownloadPolicy(ctx, st, "alice@example.org", "default")
	if a, _ := st.Account(ctx, "alice@example.org"); a.DownloadPolicy != "" {
		t.Fatalf("policy after default = %q", a.DownloadPolicy)
	}
	if err := admin.DeleteUser(ctx, st, "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteUser(ctx, st, "alice@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := admin.SetPassword(ctx, st, "nobody@example.org", "whatever-pw"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("passwd of nobody: %v", err)
	}
}

func inboxCount(t *testing.T, st store.Store, address string) uint32 {
	t.Helper()
	ctx := context.Background()
	acct, err := st.Account(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.Mailbox(ctx, acct.ID, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	return mb.Messages
}

func TestEnsureDemo(t *testing.T) {
	st := testharness.EmbeddedStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	d1, err := admin.EnsureDemo(ctx, st, dir, "localhost")
	if err != nil || !d1.Created || d1.Password == "" {
		t.Fatalf("first EnsureDemo = %+v, %v", d1, err)
	}
	fi, err := os.Stat(filepath.Join(dir, admin.DemoPasswordFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", fi, err)
	}
	if n := inboxCount(t, st, admin.DemoAddress); n != 1 {
		t.Fatalf("INBOX holds %d messages, want the welcome message", n)
	}
	a := &auth.Authenticator{Store: st}
	if _, err := a.Authenticate(ctx, "127.0.0.1", admin.DemoAddress, d1.Password); err != nil {
		t.Fatalf("demo login: %v", err)
	}

	d2, err := admin.EnsureDemo(ctx, st, dir, "localhost")
	if err != nil || d2.Created || d2.Password != d1.Password {
		t.Fatalf("second EnsureDemo = %+v, %v", d2, err)
	}
	if n := inboxCount(t, st, admin.DemoAddress); n != 1 {
		t.Fatalf("second run: INBOX holds %d messages", n)
	}

	// The file lost: a new password is made, saved and set.
	os.Remove(filepath.Join(dir, admin.DemoPasswordFile))
	d3, err := admin.EnsureDemo(ctx, st, dir, "localhost")
	if err != nil || d3.Password == d1.Password {
		t.Fatalf("after losing the file: %+v, %v", d3, err)
	}
	if _, err := a.Authenticate(ctx, "127.0.0.1", admin.DemoAddress, d3.Password); err != nil {
		t.Fatalf("demo login with the new password: %v", err)
	}
}

func TestSocket(t *testing.T) {
	st := testharness.EmbeddedStore(t)
	dir := t.TempDir()
	srv := &admin.SocketServer{Store: st, Domains: []string{"example.org"}}
	if err := srv.ListenSocket(dir); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fi, err := os.Stat(filepath.Join(dir, admin.SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	call := func(req admin.Request) (admin.Response, error) {
		t.Helper()
		return admin.CallSocket(dir, req)
	}
	if _, err := call(admin.Request{Op: "add", Address: "bob@example.org", Password: "bob-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(admin.Request{Op: "add", Address: "bob@example.org", Password: "bob-password"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := call(admin.Request{Op: "add", Address: "eve@evil.org", Password: "eve-password"}); !errors.Is(err, admin.ErrBadAddress) {
		t.Fatalf("foreign domain: %v", err)
	}
	if _, err := call(admin.Request{Op: "del", Address: "nobody@example.org"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("del nobody: %v", err)
	}
	if _, err := call(admin.Request{Op: "explode"}); err == nil {
		t.Fatal("unknown op accepted")
	}
	resp, err := call(admin.Request{Op: "list"})
	if err != nil || len(resp.Users) != 1 || resp.Users[0].Address != "bob@example.org" {
		t.Fatalf("list = %+v, %v", resp, err)
	}
	srv.Close()
	if _, err := os.Stat(filepath.Join(dir, admin.SocketName)); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestParseQuota(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"none", 0, true}, {"NONE", 0, true}, {"0", 0, true}, {"1048576", 1 << 20, true},
		{"500K", 500 << 10, true}, {"2m", 2 << 20, true}, {" 2G ", 2 << 30, true}, {"1T", 1 << 40, true},
		{"", 0, false}, {"G", 0, false}, {"-1", 0, false}, {"1.5G", 0, false}, {"12X", 0, false},
		{"9999999999999T", 0, false}, {"1 G", 0, false},
	} {
		got, err := admin.ParseQuota(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseQuota(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
