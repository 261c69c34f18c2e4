package realclients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// localMsg is one message file in a Maildir folder.
type localMsg struct {
	Path  string
	Flags string // the letters after ":2," ("" when there are none)
	Raw   []byte
}

// Subject returns the message's Subject header.
func (m localMsg) Subject() string { return headerValue(m.Raw, "Subject") }

// readMaildir returns the messages in dir's cur/ and new/, keyed by
// Subject. A missing folder is a failure.
func readMaildir(t *testing.T, dir string) map[string]localMsg {
	t.Helper()
	out := map[string]localMsg{}
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("maildir folder: %v", err)
		}
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			m := localMsg{Path: p, Raw: raw}
			if _, info, ok := strings.Cut(e.Name(), ":2,"); ok {
				m.Flags = info
			}
			subj := m.Subject()
			if _, dup := out[subj]; dup {
				t.Fatalf("maildir %s has two messages with subject %q", dir, subj)
			}
			out[subj] = m
		}
	}
	return out
}

// writeMaildirMsg puts a new message into a Maildir folder's new/ (as a
// delivery agent or a mail reader would), creating the folder if needed.
func writeMaildirMsg(t *testing.T, dir, name, msg string) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

// setMaildirFlags renames a message file so that its info part carries
// exactly flags (letters in ASCII order, as Maildir requires), moving it
// to cur/ as a mail reader does.
func setMaildirFlags(t *testing.T, m localMsg, flags string) {
	t.Helper()
	base := filepath.Base(m.Path)
	base, _, _ = strings.Cut(base, ":2,")
	dst := filepath.Join(filepath.Dir(filepath.Dir(m.Path)), "cur", base+":2,"+flags)
	if err := os.Rename(m.Path, dst); err != nil {
		t.Fatal(err)
	}
}

// withoutHeader drops every field called name from a message's header;
// clients add bookkeeping headers such as mbsync's X-TUID.
func withoutHeader(raw []byte, name string) []byte {
	return dropFields(raw, func(field string) bool {
		k, _, _ := strings.Cut(field, ":")
		return strings.EqualFold(strings.TrimSpace(k), name)
	})
}

// dropFields removes the header fields (each with its continuation lines)
// for which drop returns true; drop sees the whole field, unfolded lines
// joined as they are.
func dropFields(raw []byte, drop func(field string) bool) []byte {
	hdr, body := splitMessage(raw)
	var fields []string
	for _, line := range strings.SplitAfter(string(hdr), "\n") {
		if line == "" {
			continue
		}
		if len(fields) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			fields[len(fields)-1] += line
			continue
		}
		fields = append(fields, line)
	}
	var b strings.Builder
	for _, f := range fields {
		if !drop(f) {
			b.WriteString(f)
		}
	}
	if body != nil {
		if strings.HasSuffix(string(hdr), "\r\n") {
			b.WriteString("\r\n")
		} else {
			b.WriteString("\n")
		}
		b.Write(body)
	}
	return []byte(b.String())
}
