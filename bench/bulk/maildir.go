package bulk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Maildir writes the plan as Dovecot Maildir folders under root, laid out
// as the benchmark's Dovecot configuration expects
// (mail_location = maildir:ROOT/%d/%n/Maildir): each message is one file in
// cur/, named as Dovecot names the files it delivers
// (<time>.M<n>P<n>Q<n>.<host>,S=<size>,W=<virtual size>:2,<flags>), with
// LF line endings (Dovecot's default mail_save_crlf = no stores LF; S= is
// the file's size and W= the size with CRLF, what IMAP reports), the
// file's mtime set to the message's arrival time (Maildir's INTERNALDATE),
// and owner uid:gid. No index or dovecot-uidlist is written: Dovecot
// builds them on the first SELECT of each mailbox, as it does for any
// Maildir it did not write itself.
//
// An account whose cur/ already holds exactly its messages is left alone;
// one with some of them is written again from scratch.
func Maildir(ctx context.Context, root string, p *Plan, uid, gid int) error {
	done := 0
	for a := 0; a < p.Accounts; a++ {
		local, domain, _ := strings.Cut(p.Address(a), "@")
		md := filepath.Join(root, domain, local, "Maildir")
		cur := filepath.Join(md, "cur")
		if ents, err := os.ReadDir(cur); err == nil && len(ents) == p.PerAccount {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, domain, local)); err != nil {
			return fmt.Errorf("bulk: %w", err)
		}
		for _, d := range []string{filepath.Join(root, domain), filepath.Join(root, domain, local), md, cur, filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("bulk: %w", err)
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("bulk: %w", err)
			}
		}
		for lo := 0; lo < p.PerAccount; lo += Batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			hi := min(lo+Batch, p.PerAccount)
			_, err := parallel(lo, hi, func(j int) (struct{}, error) {
				crlf := p.Gen.Message(p.Index(a, j))
				lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
				date := p.InternalDate(j)
				flags := ""
				if p.seen(j) {
					flags = "S"
				}
				name := fmt.Sprintf("%d.M%dP%dQ%d.skbench,S=%d,W=%d:2,%s", date.Unix(), j, a+1, j+1, len(lf), len(crlf), flags)
				path := filepath.Join(cur, name)
				if err := os.WriteFile(path, lf, 0o600); err != nil {
					return struct{}{}, err
				}
				if err := os.Chown(path, uid, gid); err != nil {
					return struct{}{}, err
				}
				return struct{}{}, os.Chtimes(path, date, date)
			})
			if err != nil {
				return fmt.Errorf("bulk: maildir of %s: %w", p.Address(a), err)
			}
			done += hi - lo
			if p.Progress != nil {
				p.Progress(done, p.Total())
			}
		}
	}
	return nil
}
