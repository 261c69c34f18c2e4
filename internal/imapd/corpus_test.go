package imapd

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corpusDir is the MIME corpus with Dovecot 2.3.19's answers, kept by
// package imapwire.
var corpusDir = filepath.Join("..", "imapwire", "testdata", "mime-corpus")

// serverKnownDifferences lists corpus messages where the whole server's
// answers differ from Dovecot's on purpose, with the reason.
var serverKnownDifferences = map[string]string{
	// BINARY[1] where part 1 is a multipart: RFC 3516 §4.2 decodes "the
	// section's Content-Transfer-Encoding", and a multipart's is always
	// 7bit/8bit/binary (RFC 2045 §6.4), so we serve its bytes as stored.
	// Dovecot instead decodes every leaf inside (and fails with
	// UNKNOWN-CTE when one of them has an unknown encoding).
	"error_emails__content_transfer_encoding_qp_with_space.eml.txt":     binaryOfMultipart,
	"error_emails__content_transfer_encoding_text-html.eml.txt":         binaryOfMultipart,
	"error_emails__content_transfer_encoding_with_semi_colon.eml.txt":   binaryOfMultipart,
	"error_emails__content_transfer_encoding_x_uuencode.eml.txt":        binaryOfMultipart,
	"error_emails__empty_group_lists.eml.txt":                           binaryOfMultipart,
	"mime_emails__raw_email7.eml.txt":                                   binaryOfMultipart,
	"mime_emails__raw_email_with_nested_attachment.eml.txt":             binaryOfMultipart,
	"attachment_emails__attachment_message_rfc822_inline_image.eml.txt": binaryOfMultipart,
	// "Content-Transfer-Encoding:" with an empty value is treated as
	// absent, i.e. 7bit (RFC 2045 §6.1); Dovecot calls it unknown.
	"error_emails__content_transfer_encoding_empty.eml.txt": "empty Content-Transfer-Encoding is the default 7bit",
}

const binaryOfMultipart = "BINARY of a multipart part: RFC 3516 §4.2 decodes only the part's own encoding"

// TestDovecotCorpusOverIMAP runs the corpus script (ask-imap-server.py)
// against our server: it APPENDs every message and FETCHes ENVELOPE,
// BODYSTRUCTURE, BODY, RFC822.SIZE, BODY.PEEK[1.MIME] and BINARY.SIZE[1].
// The answers are compared with Dovecot's token by token (quoted strings
// and literals compare by value; the sequence number is ignored).
func TestDovecotCorpusOverIMAP(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	script := filepath.Join(corpusDir, "ask-imap-server.py")
	if _, err := os.Stat(script); err != nil {
		t.Skip("corpus not present: ", err)
	}
	ts := newTestServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	out := t.TempDir()
	if b, err := exec.Command(py, script, host, port, testUser, testPass, out).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, b)
	}
	refs, err := filepath.Glob(filepath.Join(corpusDir, "dovecot-2.3.19", "*.txt"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no reference answers: %v", err)
	}
	matched, skipped := 0, 0
	for _, ref := range refs {
		name := filepath.Base(ref)
		want, _ := os.ReadFile(ref)
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: no answer from our server", name)
			continue
		}
		if strings.HasPrefix(string(want), "APPEND") {
			// Dovecot refused the message; we only require an answer.
			skipped++
			continue
		}
		diffs := compareAnswers(string(got), string(want))
		reason, known := serverKnownDifferences[name]
		switch {
		case len(diffs) == 0 && known:
			t.Errorf("%s: listed as a known difference (%s) but matches now", name, reason)
		case len(diffs) == 0:
			matched++
		case !known:
			for _, d := range diffs {
				t.Errorf("%s: %s", name, d)
			}
		}
	}
	t.Logf("%d of %d messages answered as Dovecot 2.3.19 does (%d refused by Dovecot, %d known differences)",
		matched, len(refs), skipped, len(serverKnownDifferences))
}

// compareAnswers compares two answer files item by item.
func compareAnswers(got, want string) []string {
	g, w := splitItems(got), splitItems(want)
	var diffs []string
	for item, wv := range w {
		gv, ok := g[item]
		if !ok {
			diffs = append(diffs, item+": missing")
			continue
		}
		gt, wt := dropSeq(answerTokens(gv)), dropSeq(answerTokens(wv))
		if strings.Join(gt, "\x00") != strings.Join(wt, "\x00") {
			diffs = append(diffs, item+":\n  got  "+gv+"\n  want "+wv)
		}
	}
	return diffs
}

// dropSeq drops the sequence number and any unsolicited "n (UID m)"
// response imaplib collected before the answer.
func dropSeq(t []string) []string {
	if len(t) == 0 {
		return t
	}
	status, rest := t[0], t[1:]
	if status != "OK:" {
		// NO/BAD: the response code matters, the text does not.
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			return []string{status, rest[0]}
		}
		return []string{status}
	}
	if len(rest) >= 6 && rest[1] == "(" && rest[2] == "UID" && rest[4] == ")" {
		rest = rest[5:]
	}
	if len(rest) > 0 {
		rest = rest[1:]
	}
	return append([]string{status}, rest...)
}

// splitItems splits "ITEM STATUS: value" records (values may span lines).
func splitItems(s string) map[string]string {
	out := map[string]string{}
	items := []string{"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[1.MIME]", "BINARY.SIZE[1]"}
	// Each record begins at the start of a line with one of the item names
	// followed by " OK:", " NO:" or " BAD:".
	var cur string
	var sb strings.Builder
	flush := func() {
		if cur != "" {
			out[cur] = strings.TrimSuffix(sb.String(), "\n")
		}
		sb.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		started := false
		for _, it := range items {
			for _, st := range []string{" OK: ", " NO: ", " BAD: "} {
				if strings.HasPrefix(line, it+st) {
					flush()
					cur = it
					sb.WriteString(strings.TrimSpace(st) + " " + line[len(it+st):])
					started = true
				}
			}
		}
		if !started {
			sb.WriteString(line)
		}
	}
	flush()
	return out
}

// answerTokens tokenises a flattened imaplib answer: parentheses, atoms,
// quoted strings and "{n} {literal}<n octets>" literals, the last two as
// "s:" + value so that both forms compare equal.
func answerTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"':
			var sb strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				sb.WriteByte(s[j])
			}
			toks = append(toks, "s:"+sb.String())
			i = j + 1
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			const marker = " {literal}"
			if end > 0 {
				n, err := strconv.Atoi(s[i+1 : i+end])
				rest := s[i+end+1:]
				if err == nil && strings.HasPrefix(rest, marker) && len(rest) >= len(marker)+n {
					toks = append(toks, "s:"+rest[len(marker):len(marker)+n])
					i += end + 1 + len(marker) + n
					continue
				}
			}
			toks = append(toks, "{")
			i++
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' && s[j] != '\n' && s[j] != '\r' {
				if s[j] == '[' {
					// BODY[1.MIME] and the like: up to the closing bracket.
					if k := strings.IndexByte(s[j:], ']'); k > 0 {
						j += k
					}
				}
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}
