package smtpd

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package boundary of the package doc: smtpd
// sees the store only through its interface, never a backend, a SQL
// driver or cmd.
func TestDependencies(t *testing.T) {
	for _, pkg := range []string{".", "../mailauth", "../outbound"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range []string{"database/sql", "internal/store/embedded", "internal/store/postgres",
				"modernc.org/", "github.com/mattn/go-sqlite3", "github.com/jackc/", "/cmd/"} {
				if strings.Contains(dep, bad) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
