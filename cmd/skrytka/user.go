package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/skrytka/skrytka/internal/admin"
	"github.com/skrytka/skrytka/internal/store"
)

func cmdUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("user: want add, passwd, del, list, policy or quota (see \"skrytka help\")")
	}
	sub := args[0]
	fs := newFlagSet("user "+sub, stderr)
	file := fs.String("config", "", "configuration file (TOML)")
	var fromStdin *bool
	if sub == "add" || sub == "passwd" {
		fromStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	}
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	wantArgs := 1
	switch sub {
	case "add", "passwd", "del":
	case "list":
		wantArgs = 0
	case "policy", "quota":
		wantArgs = 2
	default:
		return usagef("user: unknown subcommand %q: want add, passwd, del, list, policy or quota", sub)
	}
	if len(pos) != wantArgs {
		switch wantArgs {
		case 0:
			return usagef("user list takes no address")
		case 2:
			if sub == "quota" {
				return usagef("user quota: want ADDRESS and a size (e.g. 500M, 2G) or none")
			}
			return usagef("user policy: want ADDRESS and one of expunge, trash, archive, keep, default")
		}
		return usagef("user %s: want exactly one ADDRESS", sub)
	}
	var policy string
	if sub == "policy" {
		policy = pos[1]
	}
	var quota int64
	if sub == "quota" {
		if quota, err = admin.ParseQuota(pos[1]); err != nil {
			return usagef("user quota: %v", err)
		}
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	var address string
	if wantArgs >= 1 {
		if address, err = admin.NormalizeAddress(pos[0], nil); err != nil {
			return usagef("user %s: %v", sub, err)
		}
	}
	var password string
	if fromStdin != nil {
		if password, err = readPassword(stdin, stderr, *fromStdin); err != nil {
			return err
		}
		if err := admin.CheckPassword(password); err != nil {
			return usagef("user %s: %v", sub, err)
		}
	}

	ctx := context.Background()
	log := newLogger(cfg.Log, stderr)
	var users []admin.UserInfo
	st, err := openStore(ctx, &cfg, log)
	switch {
	case err == nil:
		defer st.Close()
		switch sub {
		case "add":
			_, err = admin.AddUser(ctx, st, address, password, cfg.Domains)
		case "passwd":
			err = admin.SetPassword(ctx, st, address, password)
		case "del":
			err = admin.DeleteUser(ctx, st, address)
		case "list":
			users, err = admin.ListUsers(ctx, st)
		case "policy":
			err = admin.SetDownloadPolicy(ctx, st, address, policy)
		case "quota":
			err = admin.SetQuota(ctx, st, address, quota)
		}
	case errors.Is(err, syscall.EWOULDBLOCK):
		// The embedded store is open in a running server: ask it.
		var resp admin.Response
		resp, err = admin.CallSocket(cfg.DataDir, admin.Request{Op: sub, Address: address, Password: password, Policy: policy, Quota: quota})
		users = resp.Users
	default:
		return err
	}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrExists):
		return usagef("user %s: %s already exists", sub, address)
	case errors.Is(err, store.ErrNotFound):
		return usagef("user %s: no account %s", sub, address)
	case errors.Is(err, admin.ErrBadAddress), errors.Is(err, admin.ErrBadPassword), errors.Is(err, admin.ErrBadPolicy):
		return usagef("user %s: %v", sub, err)
	default:
		return err
	}
	switch sub {
	case "add":
		fmt.Fprintf(stdout, "added %s\n", address)
	case "passwd":
		fmt.Fprintf(stdout, "password of %s changed\n", address)
	case "del":
		fmt.Fprintf(stdout, "deleted %s and all its mail\n", address)
	case "policy":
		fmt.Fprintf(stdout, "after-download policy of %s: %s\n", address, policy)
	case "quota":
		fmt.Fprintf(stdout, "quota of %s: %s\n", address, quotaString(quota))
	case "list":
		for _, u := range users {
			p := u.DownloadPolicy
			if p == "" {
				p = "default"
			}
			fmt.Fprintf(stdout, "%s\t%d\t%s\t%s\n", u.Address, u.UsedBytes, quotaString(u.QuotaBytes), p)
		}
	}
	return nil
}

// quotaString shows a storage limit in bytes, "none" for no limit.
func quotaString(n int64) string {
	if n <= 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

// readPassword reads the password from stdin's first line, or prompts on
// the terminal without echo (twice, to catch typos).
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", usagef("-password-stdin: no password on standard input")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("standard input is not a terminal: use -password-stdin")
	}
	fmt.Fprint(stderr, "Password: ")
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(stderr, "Repeat password: ")
	pw2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(pw) != string(pw2) {
		return "", usagef("the passwords differ")
	}
	return string(pw), nil
}
