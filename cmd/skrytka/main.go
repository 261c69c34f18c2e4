// Command skrytka is the Skrytka mail server: IMAP, POP3, SMTP/LMTP and
// submission over one store.
//
// main only parses the command line and wires packages together: account
// logic lives in internal/admin, configuration in internal/config,
// listeners and TLS in internal/listen, and each protocol in its own
// server package. Exit status: 0 success, 1 a failure at run time, 2 a
// usage, configuration or start-up problem (bad flag, bad config key or
// value, port in use, unreadable certificate), always reported as one line
// on standard error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the VCS revision from the build info is shown.
var version = ""

// usageError is a problem with how skrytka was called or configured:
// exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const helpText = `Skrytka mail server.

Usage:
  skrytka serve [-config FILE]           run every configured listener
  skrytka serve -demo [-config FILE]     run a demo: account demo@localhost with a generated
                                         password, a welcome message, loopback listeners
                                         (without -config: data in ./skrytka-data)
  skrytka user add ADDRESS [-password-stdin] [-config FILE]
  skrytka user passwd ADDRESS [-password-stdin] [-config FILE]
  skrytka user del ADDRESS [-config FILE]
  skrytka user list [-config FILE]       address, bytes used, quota (bytes or none),
                                         POP3 after-download policy
  skrytka user policy ADDRESS POLICY [-config FILE]
                                         POP3 after-download policy of one account:
                                         expunge, trash, archive, keep or default
  skrytka user quota ADDRESS SIZE [-config FILE]
                                         storage limit of one account: bytes with an
                                         optional K, M, G or T suffix (powers of 1024),
                                         or none; over it, deliveries and APPEND fail
  skrytka queue list [-config FILE]      outbound messages waiting for delivery
  skrytka queue retry ID [-config FILE]  try an entry again now
  skrytka queue drop ID [-config FILE]   remove an entry without notice to its sender
  skrytka dkim generate DOMAIN [-selector S] [-config FILE]
                                         make a DKIM key, print the DNS record to publish
  skrytka migrate [-config FILE]         apply the store's schema migrations and exit
                                         (servers also migrate at start)
  skrytka version
  skrytka help

Without -config, the defaults of docs/config.md apply (loopback listeners,
data in ./skrytka-data). Without -password-stdin, user add and passwd ask
for the password on the terminal without echo; with it, they read one line
from standard input.

The user and queue commands open the store directly, or, when a server
is running on the embedded store, ask it through data_dir/admin.sock.

Exit status: 0 ok, 1 failure at run time, 2 bad usage, config or start-up.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(args, stdin, stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "skrytka: "+oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) || isStartupError(err) {
		return 2
	}
	return 1
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, helpText)
		return usagef("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return cmdServe(rest, stdout, stderr)
	case "user":
		return cmdUser(rest, stdin, stdout, stderr)
	case "queue":
		return cmdQueue(rest, stdout, stderr)
	case "dkim":
		return cmdDKIM(rest, stdout, stderr)
	case "migrate":
		return cmdMigrate(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "skrytka", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, helpText)
		return nil
	default:
		return usagef("unknown command %q (try \"skrytka help\")", cmd)
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev
		if dirty {
			v += "+dirty"
		}
	}
	return v + " " + info.GoVersion
}

// oneLine keeps error messages to one line whatever a library put in them.
func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}

// newFlagSet makes a FlagSet that reports errors as usage errors, not by
// printing the whole usage and exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_ = stderr
	return fs
}

// parseFlags parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usagef("%s: see \"skrytka help\"", fs.Name())
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
