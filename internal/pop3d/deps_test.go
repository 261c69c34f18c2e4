package pop3d

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package a front end: no SQL, no driver, no
// store backend, no other front end (STYLE.md §1).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	forbidden := []string{
		"database/sql",
		"github.com/skrytka/skrytka/internal/store/embedded",
		"github.com/skrytka/skrytka/internal/store/postgres",
		"github.com/skrytka/skrytka/internal/imapd",
		"github.com/skrytka/skrytka/internal/smtpd",
		"github.com/skrytka/skrytka/cmd/",
		"modernc.org/sqlite",
		"github.com/mattn/go-sqlite3",
		"github.com/jackc/pgx",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) {
				t.Errorf("pop3d depends on %s", dep)
			}
		}
	}
}
