package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/skrytka/skrytka/internal/admin"
	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/outbound"
	"github.com/skrytka/skrytka/internal/queue"
	"github.com/skrytka/skrytka/internal/store"
)

// dkimKeyFile is where `skrytka dkim generate` puts a key.
func dkimKeyFile(cfg *config.Config, domain, selector string) string {
	return filepath.Join(cfg.DataDir, "dkim", domain, selector+".pem")
}

// loadDKIM reads the signing key of dkim.selector for every local domain
// that has one.
func loadDKIM(cfg *config.Config) (map[string]*dkim.SignOptions, error) {
	keys := make(map[string]*dkim.SignOptions)
	for _, d := range cfg.Domains {
		file := dkimKeyFile(cfg, d, cfg.DKIM.Selector)
		pemBytes, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dkim key: %w", err)
		}
		opts, err := outbound.ParseDKIMKey(pemBytes, d, cfg.DKIM.Selector)
		if err != nil {
			return nil, fmt.Errorf("dkim key %s: %w", file, err)
		}
		keys[d] = opts
	}
	return keys, nil
}

// newSender builds the outbound sender from [queue] and [dkim].
func newSender(cfg *config.Config) (*outbound.Sender, error) {
	opts := outbound.Options{Hostname: cfg.Hostname, Smarthost: cfg.Queue.Smarthost, SmarthostUser: cfg.Queue.SmarthostUser}
	if f := cfg.Queue.SmarthostPasswordFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("queue.smarthost_password_file: %w", err)
		}
		opts.SmarthostPassword, _, _ = strings.Cut(strings.TrimRight(string(b), "\r\n"), "\n")
	}
	keys, err := loadDKIM(cfg)
	if err != nil {
		return nil, err
	}
	opts.DKIM = keys
	return outbound.New(opts), nil
}

func openQueue(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*queue.Queue, error) {
	sender, err := newSender(cfg)
	if err != nil {
		return nil, &startupError{err}
	}
	q, err := queue.Open(ctx, st, sender, queue.Options{Hostname: cfg.Hostname, MaxAge: cfg.Queue.MaxAge.D(), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open outbound queue: %w", err)
	}
	return q, nil
}

// cmdDKIM: skrytka dkim generate DOMAIN [-selector S] [-config FILE].
func cmdDKIM(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return usagef("dkim: want \"dkim generate DOMAIN\"")
	}
	fs := newFlagSet("dkim generate", stderr)
	file := fs.String("config", "", "configuration file (TOML)")
	selector := fs.String("selector", "", "DKIM selector (default: the config's dkim.selector)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("dkim generate: want exactly one DOMAIN")
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	domain := strings.ToLower(strings.TrimSuffix(pos[0], "."))
	if !cfg.IsLocalDomain(domain) {
		return usagef("dkim generate: %q is not in the config's domains %q", domain, cfg.Domains)
	}
	sel := cfg.DKIM.Selector
	if *selector != "" {
		sel = *selector
	}
	keyFile := dkimKeyFile(&cfg, domain, sel)
	if _, err := os.Stat(keyFile); err == nil {
		return usagef("dkim generate: %s exists; remove it first to make a new key", keyFile)
	}
	keyPEM, txt, err := outbound.GenerateDKIMKey()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s.\nPublish this DNS record, then restart skrytka:\n\n%s. IN TXT \"%s\"\n",
		keyFile, outbound.DKIMRecordName(domain, sel), txt)
	if sel != cfg.DKIM.Selector {
		fmt.Fprintf(stdout, "\nSet dkim.selector = %q in the config to sign with this key.\n", sel)
	}
	return nil
}

// cmdQueue: skrytka queue list | retry ID | drop ID [-config FILE].
func cmdQueue(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("queue: want list, retry ID or drop ID")
	}
	sub := args[0]
	fs := newFlagSet("queue "+sub, stderr)
	file := fs.String("config", "", "configuration file (TOML)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	var id store.UID
	switch sub {
	case "list":
		if len(pos) != 0 {
			return usagef("queue list takes no argument")
		}
	case "retry", "drop":
		if len(pos) != 1 {
			return usagef("queue %s: want one ID (see \"skrytka queue list\")", sub)
		}
		n, err := strconv.ParseUint(pos[0], 10, 32)
		if err != nil || n == 0 {
			return usagef("queue %s: bad ID %q", sub, pos[0])
		}
		id = store.UID(n)
	default:
		return usagef("queue: unknown subcommand %q: want list, retry or drop", sub)
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	ctx := context.Background()
	log := newLogger(cfg.Log, stderr)
	var entries []queue.Entry
	st, err := openStore(ctx, &cfg, log)
	switch {
	case err == nil:
		defer st.Close()
		q, err2 := queue.Open(ctx, st, outbound.New(outbound.Options{}), queue.Options{Hostname: cfg.Hostname, Logger: log})
		if err2 != nil {
			return err2
		}
		switch sub {
		case "list":
			entries, err = q.List(ctx)
		case "retry":
			err = q.Retry(ctx, id)
		case "drop":
			err = q.Drop(ctx, id)
		}
	case errors.Is(err, syscall.EWOULDBLOCK):
		var resp admin.Response
		resp, err = admin.CallSocket(cfg.DataDir, admin.Request{Op: "queue-" + sub, QueueID: id})
		entries = resp.Entries
	default:
		return err
	}
	if errors.Is(err, store.ErrNotFound) {
		return usagef("queue %s: no entry %d", sub, id)
	}
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFROM\tTO\tSIZE\tATTEMPTS\tARRIVED\tNEXT")
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", e.ID, e.From, strings.Join(e.To, ","), e.Size, e.Attempts,
				e.Arrival.UTC().Format(time.RFC3339), e.Next.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	case "retry":
		fmt.Fprintf(stdout, "entry %d will be tried at once\n", id)
	case "drop":
		fmt.Fprintf(stdout, "entry %d dropped (no notice to the sender)\n", id)
	}
	return nil
}

// queueLeaseRefresh is how often the queue runner refreshes its lease;
// well under the PostgreSQL backend's lease expiry.
const queueLeaseRefresh = 20 * time.Second

// runQueue runs the outbound queue until ctx ends, on one node at a time:
// the runner holds the maildrop lease of the queue's system account,
// which the store keeps across nodes (PostgreSQL) and which no person can
// take (nobody can log in to that account). A node that does not get the
// lease tries again after retry.
func runQueue(ctx context.Context, st store.Store, q *queue.Queue, holder string, retry time.Duration, log *slog.Logger) {
	for {
		if err := runQueueOnce(ctx, st, q, holder, log); err != nil && ctx.Err() == nil {
			log.Warn("outbound queue not run on this node", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func runQueueOnce(ctx context.Context, st store.Store, q *queue.Queue, holder string, log *slog.Logger) error {
	acct, err := st.Account(ctx, queue.SystemAddress)
	if err != nil {
		return err
	}
	lease, err := st.LockMaildrop(ctx, acct.ID, holder)
	if errors.Is(err, store.ErrLocked) {
		return nil // another node runs it
	}
	if err != nil {
		return err
	}
	defer lease.Release()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(queueLeaseRefresh)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := lease.Refresh(runCtx); err != nil {
					if runCtx.Err() == nil {
						log.Warn("outbound queue lease lost; stopping the queue here", "err", err)
					}
					cancel()
					return
				}
			}
		}
	}()
	q.Run(runCtx)
	return nil
}
