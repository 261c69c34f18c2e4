package imapd

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the front end away from storage backends and SQL
// (STYLE.md §1): imapd reaches mail only through store.Store.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"database/sql", "modernc.org/sqlite", "github.com/mattn/go-sqlite3", "github.com/jackc/pgx", "internal/store/embedded", "internal/store/postgres", "skrytka/cmd"} {
			if strings.Contains(dep, bad) {
				t.Errorf("imapd depends on %s", dep)
			}
		}
	}
}
