package deptest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/skrytka/skrytka"

// pkg is the part of `go list -json` these tests read.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
	GoFiles    []string
}

// listAll runs `go list -json -deps=false` on every package of the module.
func listAll(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json", module+"/...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// forbiddenForFrontEnds are imports no front end may reach, directly or
// through another package: SQL, drivers and the backends.
var forbiddenForFrontEnds = []string{
	"database/sql",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/jackc/pgx",
	"github.com/lib/pq",
	module + "/internal/store/embedded",
	module + "/internal/store/postgres",
	module + "/internal/testharness",
	module + "/cmd",
}

func matches(dep, prefix string) bool {
	return dep == prefix || strings.HasPrefix(dep, prefix+"/")
}

// TestFrontEndsReachNoDatabase: imapd, pop3d and smtpd (and every package
// below them) talk to storage only through the store interface.
func TestFrontEndsReachNoDatabase(t *testing.T) {
	found := 0
	for _, p := range listAll(t) {
		fe := false
		for _, name := range []string{"imapd", "pop3d", "smtpd"} {
			fe = fe || matches(p.ImportPath, module+"/internal/"+name)
		}
		if !fe {
			continue
		}
		found++
		for _, d := range p.Deps {
			for _, f := range forbiddenForFrontEnds {
				if matches(d, f) {
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no front-end package found")
	}
}

// TestBackendsImportedOnlyByMain: besides cmd/, bench/ (programs) and the
// test harness, no package imports a backend or a driver, so swapping the
// backend never touches protocol code. The store contract imports no
// driver either.
func TestBackendsImportedOnlyByMain(t *testing.T) {
	for _, p := range listAll(t) {
		if matches(p.ImportPath, module+"/cmd") || matches(p.ImportPath, module+"/bench") ||
			matches(p.ImportPath, module+"/internal/testharness") ||
			matches(p.ImportPath, module+"/internal/store/embedded") ||
			matches(p.ImportPath, module+"/internal/store/postgres") {
			continue
		}
		for _, d := range p.Deps {
			for _, f := range forbiddenForFrontEnds {
				if matches(d, f) {
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
		}
	}
}

// TestNobodyImportsCmd: main packages are leaves.
func TestNobodyImportsCmd(t *testing.T) {
	for _, p := range listAll(t) {
		for _, imp := range p.Imports {
			if matches(imp, module+"/cmd") {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}

// TestEveryPackageHasDoc: every package says what it is for (STYLE.md §3).
func TestEveryPackageHasDoc(t *testing.T) {
	for _, p := range listAll(t) {
		if len(p.GoFiles) == 0 {
			continue // test-only directory
		}
		doc := strings.TrimSpace(p.Doc)
		if doc == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
			continue
		}
		if len(strings.Fields(doc)) < 5 {
			t.Errorf("package %s doc comment is too short: %q", p.ImportPath, doc)
		}
	}
}
