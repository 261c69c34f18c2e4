package bench_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareDovecot runs bench/compare.sh against Dovecot alone with tiny
// sizes: it checks the script end to end (config, load, rounds, table) and
// that every workload's correctness checks pass against a reference server.
// It needs root and an installed Dovecot; it does not install one.
func TestCompareDovecot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Dovecot; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("compare.sh configures Dovecot's users and needs root")
	}
	if _, err := exec.LookPath("dovecot"); err != nil {
		t.Skip("Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd)")
	}
	for _, f := range []string{"/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/pop3"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("Dovecot's %s is not installed", f)
		}
	}
	work := t.TempDir()
	// Dovecot's mail processes run as an unprivileged user: they must be
	// able to reach the work directory.
	if err := os.Chmod(filepath.Dir(work), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "compare.sh", "-quick")
	cmd.Env = append(os.Environ(), "SERVERS=dovecot", "WORK="+work, "ROUNDS=1",
		"PER_USER=5", "BIG_N=200", "CLIENTS=5", "POP3_CLIENTS=3", "SESSIONS=3",
		"MIX_DUR=1s", "DELIVER_DUR=1s", "MAX_BYTES=200000",
		"IDLE_N=10,20", "APPEND_CLIENTS=3", "APPEND_DUR=1s", "BULK_N=300", "BULK_ACCOUNTS=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compare.sh: %v\n%s", err, out)
	}
	for _, w := range []string{"1-lmtp", "3-imap-mix", "4-pop3", "5-big-mailbox", "6-idle-10", "6-idle-20", "7-startup", "7-startup-bulk", "8-append", "SEARCH BODY rare ms", "SEARCH BODY common ms"} {
		if !strings.Contains(string(out), "| "+w) && !strings.Contains(string(out), w) {
			t.Errorf("table lacks %s:\n%s", w, out)
		}
	}
}
