package imapd

import (
	"net"
	"os/exec"
	"testing"
)

// TestPythonImaplib runs testdata/imaplib_client.py: folders with hierarchy
// and non-ASCII names, APPEND, SEARCH, FETCH of parts, COPY, MOVE, STORE,
// EXPUNGE and IDLE seeing a delivery from another session.
func TestPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	ts := newTestServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	out, err := exec.Command(py, "testdata/imaplib_client.py", host, port, testUser, testPass).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib client: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
