package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/skrytka/skrytka/internal/auth"
)

func TestSASLPlain(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t)}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		response string
		wantErr  error
	}{
		{"empty authzid", "\x00" + user + "\x00" + password, nil},
		{"authzid equal", user + "\x00" + user + "\x00" + password, nil},
		{"authzid equal ignoring case", "ALICE@example.org\x00" + user + "\x00" + password, nil},
		{"authzid other user", "bob@example.org\x00" + user + "\x00" + password, auth.ErrFailed},
		{"wrong password", "\x00" + user + "\x00nope", auth.ErrFailed},
		{"malformed", "no-nuls-here", auth.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := a.NewSASLServer(ctx, "plain", "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := s.Next([]byte(tc.response))
			acct, ok := s.Account()
			if tc.wantErr == nil {
				if err != nil || !done || !ok || acct.Address != user {
					t.Fatalf("Next = done %v, %v; account %v %v", done, err, acct.Address, ok)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || ok {
				t.Fatalf("Next err = %v (ok %v), want %v", err, ok, tc.wantErr)
			}
			if !errors.Is(err, auth.ErrFailed) {
				t.Fatalf("%v does not match ErrFailed", err)
			}
		})
	}
}

func TestSASLPlainNoInitialResponse(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t)}
	s, _ := a.NewSASLServer(context.Background(), auth.MechPlain, "127.0.0.1")
	ch, done, err := s.Next(nil)
	if err != nil || done || len(ch) != 0 {
		t.Fatalf("first step = %q %v %v, want empty challenge", ch, done, err)
	}
	if _, done, err = s.Next([]byte("\x00" + user + "\x00" + password)); err != nil || !done {
		t.Fatalf("second step: %v %v", done, err)
	}
}

func TestSASLLogin(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t)}
	s, err := a.NewSASLServer(context.Background(), "LOGIN", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		resp []byte
		want string
	}{{nil, "Username:"}, {[]byte(user), "Password:"}}
	for _, st := range steps {
		ch, done, err := s.Next(st.resp)
		if err != nil || done || string(ch) != st.want {
			t.Fatalf("Next(%q) = %q %v %v", st.resp, ch, done, err)
		}
	}
	if _, done, err := s.Next([]byte(password)); err != nil || !done {
		t.Fatalf("password step: %v %v", done, err)
	}
	if acct, ok := s.Account(); !ok || acct.Address != user {
		t.Fatal("no account after LOGIN")
	}
	if _, _, err := s.Next([]byte("more")); err == nil {
		t.Fatal("response after the end accepted")
	}

	// Wrong password; user name as initial response.
	s, _ = a.NewSASLServer(context.Background(), "LOGIN", "127.0.0.1")
	if ch, _, _ := s.Next([]byte(user)); string(ch) != "Password:" {
		t.Fatalf("initial response: challenge %q", ch)
	}
	if _, _, err := s.Next([]byte("bad")); !errors.Is(err, auth.ErrFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestSASLUnknownMechanism(t *testing.T) {
	a := &auth.Authenticator{Store: newStore(t)}
	if _, err := a.NewSASLServer(context.Background(), "CRAM-MD5", "127.0.0.1"); !errors.Is(err, auth.ErrMechanism) {
		t.Fatalf("err = %v", err)
	}
}

func TestPlaintextPolicy(t *testing.T) {
	if _, err := auth.ParsePlaintextPolicy("sometimes"); err == nil {
		t.Fatal("bad policy accepted")
	}
}
