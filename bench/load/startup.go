package load

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// StartupParams configure workload 7.
type StartupParams struct {
	// T0 is when the server was started (the compare script records the
	// time just before it execs the server).
	T0   time.Time
	User string // logs in as this user and SELECTs its INBOX
	Want int    // messages expected in that INBOX (-1: do not check)
	// Workload names the result ("7-startup" if empty); Params describes
	// the store for the table.
	Workload, Params string
}

// Startup runs workload 7: it polls the IMAP port until a greeting arrives
// ("ready"), then logs in as p.User and SELECTs INBOX, checking it holds
// p.Want messages ("first SELECT"). Both are measured from p.T0.
func Startup(ctx context.Context, t *Target, p StartupParams) (*Result, error) {
	if p.Workload == "" {
		p.Workload = "7-startup"
	}
	res := &Result{Workload: p.Workload, Server: t.Name, Params: p.Params}
	t0, user, want := p.T0, p.User, p.Want
	deadline := time.Now().Add(10 * time.Minute)
	var c *imapclient.Client
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no IMAP greeting within 10 minutes", t.Name)
		}
		conn, err := net.DialTimeout("tcp", t.addr(t.IMAP), time.Second)
		if err != nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		c = imapclient.New(conn, nil)
		if err := c.WaitGreeting(); err != nil {
			c.Close()
			time.Sleep(2 * time.Millisecond)
			continue
		}
		break
	}
	res.add("ready ms", ms(time.Since(t0)), false)
	defer imapClose(c)
	if err := c.Login(user, t.Password).Wait(); err != nil {
		return nil, fmt.Errorf("LOGIN %s: %w", user, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("SELECT: %w", err)
	}
	res.add("first SELECT ms", ms(time.Since(t0)), false)
	if want >= 0 && int(sel.NumMessages) != want {
		return nil, checkf("%s: after start-up INBOX has %d messages, want %d", user, sel.NumMessages, want)
	}
	res.Checked = 1
	return res, nil
}

// Warm logs in as each user in turn and SELECTs its INBOX once, checking
// it holds want messages, and returns the slowest SELECT. A server that
// builds its indexes lazily (Dovecot on a Maildir it did not write) builds
// them here, once, after a bulk load, so that the start-up rounds measure
// a server in its steady state.
func Warm(ctx context.Context, t *Target, users []string, want int) (time.Duration, error) {
	var slowest time.Duration
	for _, u := range users {
		if err := ctx.Err(); err != nil {
			return slowest, err
		}
		c, err := t.imapLogin(u, nil)
		if err != nil {
			return slowest, err
		}
		t0 := time.Now()
		sel, err := c.Select("INBOX", nil).Wait()
		d := time.Since(t0)
		imapClose(c)
		if err != nil {
			return slowest, fmt.Errorf("SELECT INBOX of %s: %w", u, err)
		}
		if want >= 0 && int(sel.NumMessages) != want {
			return slowest, checkf("%s: INBOX has %d messages, want %d", u, sel.NumMessages, want)
		}
		slowest = max(slowest, d)
	}
	return slowest, nil
}
