package imapd

import (
	"strings"
	"time"

	"github.com/skrytka/skrytka/internal/store"
)

// cmdIdle: RFC 2177, RFC 9051 §6.3.13. Changes are sent as they arrive.
// A helper goroutine reads the DONE line; it is joined before returning.
func cmdIdle(c *conn, cmd *command) error {
	if err := cmd.d.end(); err != nil {
		return err
	}
	if err := c.continuation("idling"); err != nil {
		return err
	}
	if c.sel != nil {
		c.forceSync()
		c.sendUpdates(true)
		if err := c.flush(); err != nil {
			return err
		}
	}
	type result struct {
		line string
		err  error
	}
	c.setReadDeadline(c.srv.opts.IdleTimeout)
	done := make(chan result, 1)
	go func() {
		line, err := c.readLine()
		done <- result{line, err}
	}()
	var subC = func() <-chan store.Change {
		if c.sub == nil {
			return nil
		}
		return c.sub.C()
	}
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return r.err
			}
			if !strings.EqualFold(strings.TrimSpace(r.line), "DONE") {
				return bad("", "expected DONE")
			}
			return c.ok(cmd, "", "IDLE terminated")
		case ch, ok := <-subC():
			if !ok {
				c.sub = nil
				continue
			}
			c.noteChange(ch)
			if c.sel != nil {
				c.sendUpdates(true)
			}
			if c.state == stateLogout {
				c.flush()
				c.netConn().SetReadDeadline(time.Now())
				<-done
				return nil
			}
			if err := c.flush(); err != nil {
				c.netConn().SetReadDeadline(time.Now())
				<-done
				return err
			}
		case <-c.shutdownCh:
			c.sendString("* BYE server shutting down")
			c.flush()
			c.netConn().SetReadDeadline(time.Now())
			<-done
			c.state = stateLogout
			return nil
		}
	}
}
