package load

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Startup runs workload 7. The caller started the server at t0 (the
// compare script records the time just before it execs the server); this
// polls the IMAP port until a greeting arrives ("ready"), then logs in as
// user and SELECTs INBOX, checking it holds want messages ("first SELECT").
// Both are measured from t0.
func Startup(ctx context.Context, t *Target, t0 time.Time, user string, want int, total int) (*Result, error) {
	res := &Result{Workload: "7-startup", Server: t.Name,
		Params: fmt.Sprintf("%d msgs in the store", total)}
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
