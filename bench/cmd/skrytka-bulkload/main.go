// Command skrytka-bulkload fills a store with the benchmark's large corpus
// without going through any protocol (package bench/bulk): Skrytka's
// embedded store through its Go API, or a Dovecot Maildir as files. The
// compare script uses it once per WORK directory for workload 7 (start-up
// with 1,000,000 messages in the store).
//
// Usage:
//
//	skrytka-bulkload -store skrytka -dir DATA_DIR [plan flags]
//	skrytka-bulkload -store maildir -dir MAIL_ROOT -uid N -gid N [plan flags]
//	skrytka-bulkload -index-only -dir DATA_DIR
//
// With -index-only it loads nothing: it opens the embedded store in
// DATA_DIR (which applies pending schema migrations) and fills the text
// index from its queue before returning. The store fills that queue in the
// background while a server runs; a benchmark must not measure a server
// busy indexing a store it was handed (a freshly migrated one, say), so
// the compare script runs this before the rounds.
//
// It is separate from skrytka-bench because it links Skrytka's storage
// backend, which the load generator (a client of any server) must not.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/skrytka/skrytka/bench/bulk"
	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/internal/auth"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("skrytka-bulkload: ")
	kind := flag.String("store", "skrytka", "skrytka (embedded store in -dir) or maildir (Dovecot Maildir tree under -dir)")
	dir := flag.String("dir", "", "Skrytka's data_dir, or the Maildir root (mail_location maildir:DIR/%d/%n/Maildir)")
	total := flag.Int("n", 1000000, "messages in all")
	accounts := flag.Int("accounts", 100, "accounts (the messages are spread evenly over their INBOXes)")
	prefix := flag.String("prefix", "bulk", "accounts are PREFIX1..PREFIXN@DOMAIN")
	domain := flag.String("domain", "bench.test", "mail domain")
	password := flag.String("password", "bench-password", "password of the accounts (skrytka store)")
	seed := flag.Uint64("seed", 1, "corpus seed (the bulk corpus uses seed+5)")
	maxBytes := flag.Int("max-bytes", 4096, "largest message (compact profile: 1 KB up to this)")
	unread := flag.Int("unread", 20, "newest messages of each INBOX left without \\Seen")
	uid := flag.Int("uid", -1, "maildir: owner uid of the files")
	gid := flag.Int("gid", -1, "maildir: owner gid of the files")
	indexOnly := flag.Bool("index-only", false, "open the embedded store in -dir (migrating it) and fill its text index; load nothing")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *indexOnly {
		if *dir == "" {
			log.Fatal("-index-only needs -dir")
		}
		t0 := time.Now()
		st, err := openStore(ctx, *dir)
		if err != nil {
			log.Fatal(err)
		}
		err = indexText(ctx, st)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("%s: opened and indexed in %s", *dir, time.Since(t0).Round(time.Second))
		return
	}
	if *dir == "" || *accounts < 1 || *total < *accounts || *total%*accounts != 0 {
		log.Fatal("need -dir, and -n a multiple of -accounts")
	}
	t0 := time.Now()
	last := t0
	p := &bulk.Plan{
		Accounts: *accounts, PerAccount: *total / *accounts, Prefix: *prefix, Domain: *domain, Unread: *unread,
		Gen: Gen(*seed, *maxBytes),
		Progress: func(done, total int) {
			if time.Since(last) >= 30*time.Second {
				last = time.Now()
				log.Printf("%s: %d/%d messages this run (%.0f/s)", *kind, done, total, float64(done)/time.Since(t0).Seconds())
			}
		},
	}
	var err error
	switch *kind {
	case "skrytka":
		err = loadSkrytka(ctx, *dir, p, *password)
	case "maildir":
		if *uid < 0 || *gid < 0 {
			log.Fatal("maildir: need -uid and -gid")
		}
		err = bulk.Maildir(ctx, *dir, p, *uid, *gid)
	default:
		err = fmt.Errorf("unknown -store %q", *kind)
	}
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s: %d messages in %d accounts in %s: done in %s", *kind, p.Total(), p.Accounts, *dir, time.Since(t0).Round(time.Second))
}

// Gen is the bulk corpus: the compact profile capped at maxBytes, with its
// own seed so it differs from big@'s mailbox.
func Gen(seed uint64, maxBytes int) *corpus.Generator {
	return &corpus.Generator{Seed: seed + 5, Profile: corpus.Compact, MaxBytes: maxBytes}
}

func openStore(ctx context.Context, dir string) (*embedded.Store, error) {
	return embedded.Open(ctx, dir, embedded.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// indexText fills the store's text index from its queue, if the store
// has one (IndexText; older builds index inside the delivery and have
// nothing to do).
func indexText(ctx context.Context, st *embedded.Store) error {
	var s any = st
	ix, ok := s.(interface{ IndexText(context.Context) error })
	if !ok {
		return nil
	}
	t0 := time.Now()
	if err := ix.IndexText(ctx); err != nil {
		return fmt.Errorf("text index: %w", err)
	}
	log.Printf("text index filled in %s", time.Since(t0).Round(time.Second))
	return nil
}

func loadSkrytka(ctx context.Context, dir string, p *bulk.Plan, password string) error {
	st, err := openStore(ctx, dir)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		st.Close()
		return err
	}
	if err := bulk.Skrytka(ctx, st, p, hash); err != nil {
		st.Close()
		return err
	}
	return st.Close()
}
