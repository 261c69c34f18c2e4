package pop3d

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var updateTranscripts = flag.Bool("update", false, "rewrite testdata/transcripts with the server's answers")

// TestTranscripts replays the sessions in testdata/transcripts and checks
// the server's answers byte for byte (each S: line is one CRLF line).
//
// Format: "deliver NAME" puts message NAME (msg1, msg2, msg3) into INBOX
// before the session; "C: line" is sent by the client, and consecutive C:
// lines go out in one write (pipelining); "S: line" is expected from the
// server. {UIDLn}, {SIZEn} (n: delivery order) and {TOTAL} stand for values
// that vary between runs. "#" starts a comment. With -update, the S: lines
// are rewritten from what the server says.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runTranscript(t, file) })
	}
}

var namedMessages = map[string]string{"msg1": msg1, "msg2": msg2, "msg3": msg3}

type transcriptStep struct {
	comments []string // shown before the step
	client   []string // sent in one write
	server   []string // expected lines
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	var header []string // comments and deliver lines, kept on update
	var steps []transcriptStep
	vars := map[string]string{}
	var total int64
	// The greeting is the answer to no command.
	steps = append(steps, transcriptStep{})
	boundary := false // a blank or comment line ends a pipelined batch
	var pending []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		last := &steps[len(steps)-1]
		switch {
		case strings.HasPrefix(line, "C: "):
			if len(last.server) > 0 || boundary || len(steps) == 1 {
				steps = append(steps, transcriptStep{comments: pending})
				pending, boundary = nil, false
				last = &steps[len(steps)-1]
			}
			last.client = append(last.client, strings.TrimPrefix(line, "C: "))
		case strings.HasPrefix(line, "S: "):
			last.server = append(last.server, strings.TrimPrefix(line, "S: "))
		case strings.HasPrefix(line, "deliver "):
			name := strings.TrimPrefix(line, "deliver ")
			body, ok := namedMessages[name]
			if !ok {
				t.Fatalf("unknown message %q", name)
			}
			deliver(t, e.st, e.acct, e.inbox.ID, body)
			header = append(header, line)
		case line == "" || strings.HasPrefix(line, "#"):
			if len(steps) == 1 && len(last.server) == 0 {
				header = append(header, line)
			} else {
				pending = append(pending, line)
				boundary = true
			}
		default:
			t.Fatalf("bad transcript line %q", line)
		}
	}
	for i, m := range e.storedMessages() {
		vars[fmt.Sprintf("{UIDL%d}", i+1)] = uidl(m.ID)
		vars[fmt.Sprintf("{SIZE%d}", i+1)] = fmt.Sprint(m.Size)
		total += m.Size
	}
	vars["{TOTAL}"] = fmt.Sprint(total)
	expand := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}

	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	var got []transcriptStep
	for _, st := range steps {
		if len(st.client) > 0 {
			var b strings.Builder
			for _, l := range st.client {
				b.WriteString(expand(l) + "\r\n")
			}
			if _, err := nc.Write([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
		}
		g := transcriptStep{comments: st.comments, client: st.client}
		if *updateTranscripts {
			g.server = readQuiet(t, nc, br)
		} else {
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for _, want := range st.server {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %q: read: %v (want %q)", st.client, err, want)
				}
				if !strings.HasSuffix(l, "\r\n") {
					t.Fatalf("line %q without CRLF", l)
				}
				if l = strings.TrimSuffix(l, "\r\n"); l != expand(want) {
					t.Fatalf("after %q:\n got %q\nwant %q", st.client, l, expand(want))
				}
			}
		}
		got = append(got, g)
	}
	if !*updateTranscripts {
		// Nothing more may come.
		nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if l, err := br.ReadString('\n'); err == nil {
			t.Fatalf("unexpected extra line %q", l)
		}
		return
	}
	// Rewrite, turning varying values back into placeholders (longest
	// values first, so that a size is not replaced inside a UIDL).
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(vars[keys[i]]) > len(vars[keys[j]]) })
	var out strings.Builder
	for _, h := range header {
		out.WriteString(h + "\n")
	}
	for _, st := range got {
		for _, l := range st.comments {
			out.WriteString(l + "\n")
		}
		for _, l := range st.client {
			out.WriteString("C: " + l + "\n")
		}
		for _, l := range st.server {
			for _, k := range keys {
				l = strings.ReplaceAll(l, vars[k], k)
			}
			out.WriteString("S: " + l + "\n")
		}
	}
	if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readQuiet reads lines until the server is quiet for a moment or closes.
func readQuiet(t *testing.T, nc net.Conn, br *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for {
		nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		l, err := br.ReadString('\n')
		if l != "" && err == nil {
			lines = append(lines, strings.TrimSuffix(l, "\r\n"))
			continue
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && l == "" {
			return lines // closed
		}
		return lines
	}
}
