package load

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapLogin connects, waits for the greeting and logs in.
func (t *Target) imapLogin(user string, opts *imapclient.Options) (*imapclient.Client, error) {
	conn, err := t.dial(t.IMAP)
	if err != nil {
		return nil, err
	}
	c := imapclient.New(conn, opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("IMAP greeting: %w", err)
	}
	if err := c.Login(user, t.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("IMAP LOGIN %s: %w", user, err)
	}
	return c, nil
}

func imapClose(c *imapclient.Client) {
	done := make(chan struct{})
	go func() {
		c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	c.Close()
}

// countInbox returns the number of messages in user's INBOX (STATUS).
func (t *Target) countInbox(user string) (uint32, error) {
	c, err := t.imapLogin(user, nil)
	if err != nil {
		return 0, err
	}
	defer imapClose(c)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("STATUS INBOX of %s: %w", user, err)
	}
	if st.NumMessages == nil {
		return 0, checkf("STATUS of %s has no MESSAGES", user)
	}
	return *st.NumMessages, nil
}

// fetchLast returns BODY.PEEK[] of the last message in user's INBOX.
func (t *Target) fetchLast(user string) ([]byte, error) {
	c, err := t.imapLogin(user, nil)
	if err != nil {
		return nil, err
	}
	defer imapClose(c)
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("EXAMINE INBOX of %s: %w", user, err)
	}
	if sel.NumMessages == 0 {
		return nil, checkf("INBOX of %s is empty", user)
	}
	return fetchBody(c, imap.SeqSetNum(sel.NumMessages))
}

var bodyPeek = &imap.FetchItemBodySection{Peek: true}

// fetchBody returns BODY.PEEK[] of one message (by sequence number or UID).
// A UIDSet makes imapclient send UID FETCH.
func fetchBody(c *imapclient.Client, set imap.NumSet) ([]byte, error) {
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{bodyPeek}}
	msgs, err := c.Fetch(set, opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("FETCH BODY.PEEK[]: %w", err)
	}
	if len(msgs) != 1 {
		return nil, checkf("FETCH %v BODY.PEEK[] returned %d messages", set, len(msgs))
	}
	b := msgs[0].FindBodySection(bodyPeek)
	if b == nil {
		return nil, checkf("FETCH %v returned no BODY[]", set)
	}
	return b, nil
}

// FetchLast returns BODY.PEEK[] of the last message in user's INBOX.
func (t *Target) FetchLast(user string) ([]byte, error) { return t.fetchLast(user) }

// emptyInbox expunges every message in user's INBOX.
func (t *Target) emptyInbox(user string) error {
	c, err := t.imapLogin(user, nil)
	if err != nil {
		return err
	}
	defer imapClose(c)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return fmt.Errorf("SELECT INBOX of %s: %w", user, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}} // 1:*
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("STORE 1:* +FLAGS \\Deleted in %s: %w", user, err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		return fmt.Errorf("EXPUNGE in %s: %w", user, err)
	}
	return nil
}
