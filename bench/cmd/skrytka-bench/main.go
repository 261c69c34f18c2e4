// Command skrytka-bench drives Skrytka's benchmark workloads against any
// IMAP/POP3/SMTP/LMTP server on loopback and prints their results; the
// compare script (bench/compare.sh) runs it against Skrytka and Dovecot in
// alternation and turns the results into one table.
//
// Usage:
//
//	skrytka-bench users    [target flags]        print every account the workloads use
//	skrytka-bench hash     -password P           print an argon2id hash (Skrytka's parameters)
//	skrytka-bench load     [target flags] -what users|big
//	skrytka-bench run      [target flags] -w 1,2,3,4,5,6,8 -round N -out results.jsonl
//	skrytka-bench startup  [target flags] -t0-ns NANOS -out results.jsonl
//	skrytka-bench warm     [target flags] -warm-prefix bulk -warm-accounts N -startup-want M
//	skrytka-bench table    -a skrytka -b dovecot results.jsonl
//	skrytka-bench show     -profile realistic -i N   print corpus message N
//
// It imports no server code: only bench/load, bench/corpus and, for the
// hash subcommand, internal/auth.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/skrytka/skrytka/bench/corpus"
	"github.com/skrytka/skrytka/bench/load"
	"github.com/skrytka/skrytka/internal/auth"
)

type options struct {
	t             load.Target
	pids          string
	seed          uint64
	out           string
	round         int
	workloads     string
	what          string
	sessions      int
	deliverDur    time.Duration
	clients       int
	mixDur        time.Duration
	pop3Clients   int
	perUser       int
	maxBytes      int
	bigN          int
	idleSteps     string
	appendClients int
	appendDur     time.Duration
	idleParallel  int
	loadSessions  int
	t0ns          int64
	startupWant   int
	startupTotal  int
	warmPrefix    string
	warmAccounts  int
	startupUser   string
	startupName   string
	startupParams string
}

func (o *options) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.t.Name, "name", "server", "server label in results")
	fs.StringVar(&o.t.Host, "host", "127.0.0.1", "server host")
	fs.IntVar(&o.t.IMAP, "imap", 0, "IMAP port (0: none)")
	fs.IntVar(&o.t.POP3, "pop3", 0, "POP3 port (0: none)")
	fs.IntVar(&o.t.SMTP, "smtp", 0, "SMTP port (0: none)")
	fs.IntVar(&o.t.LMTP, "lmtp", 0, "LMTP port (0: none)")
	fs.StringVar(&o.t.Domain, "domain", "bench.test", "mail domain of the bench accounts")
	fs.StringVar(&o.t.Password, "password", "bench-password", "password of every bench account")
	fs.StringVar(&o.t.UserPrefix, "prefix", "u", "local-part prefix of the ordinary accounts")
	fs.StringVar(&o.pids, "pids", "", "server root pids, comma-separated (memory is read from /proc)")
	fs.Uint64Var(&o.seed, "seed", 1, "corpus seed")
	fs.StringVar(&o.out, "out", "", "append JSON results to this file")
	fs.IntVar(&o.round, "round", 1, "round number recorded with the results")
	fs.StringVar(&o.workloads, "w", "1,2,3,4,5,6,8", "workloads to run")
	fs.StringVar(&o.what, "what", "users", "load: users (realistic corpus into each ordinary account) or big (compact corpus into big@)")
	fs.IntVar(&o.sessions, "sessions", 20, "1,2: concurrent delivery sessions")
	fs.DurationVar(&o.deliverDur, "deliver-dur", 10*time.Second, "1,2: how long to deliver")
	fs.IntVar(&o.clients, "clients", 50, "3: concurrent IMAP clients")
	fs.DurationVar(&o.mixDur, "mix-dur", 30*time.Second, "3: duration")
	fs.IntVar(&o.pop3Clients, "pop3-clients", 20, "4: concurrent POP3 clients")
	fs.IntVar(&o.perUser, "per-user", 100, "messages preloaded into each ordinary account")
	fs.IntVar(&o.maxBytes, "max-bytes", 4<<20, "largest message of the realistic corpus")
	fs.IntVar(&o.bigN, "big", 100000, "5: messages in big@'s INBOX")
	fs.StringVar(&o.idleSteps, "idle", "2000,5000", "6: idle connections, comma-separated increasing steps (each step is measured)")
	fs.IntVar(&o.idleParallel, "idle-parallel", 32, "6: logins in flight while opening the idle connections (all to one account)")
	fs.IntVar(&o.appendClients, "append-clients", 10, "8: concurrent APPEND clients")
	fs.DurationVar(&o.appendDur, "append-dur", 10*time.Second, "8: how long to append")
	fs.IntVar(&o.loadSessions, "load-sessions", 20, "load: concurrent LMTP sessions")
	fs.Int64Var(&o.t0ns, "t0-ns", 0, "startup: unix nanoseconds just before the server was started")
	fs.IntVar(&o.startupWant, "startup-want", -1, "startup: messages expected in big@'s INBOX (-1: do not check)")
	fs.IntVar(&o.startupTotal, "startup-total", 0, "startup: messages in the whole store (for the table)")
	fs.StringVar(&o.warmPrefix, "warm-prefix", "bulk", "warm: accounts are PREFIX1..PREFIXN@DOMAIN")
	fs.IntVar(&o.warmAccounts, "warm-accounts", 100, "warm: number of accounts")
	fs.StringVar(&o.startupUser, "startup-user", "", "startup: account whose INBOX is selected (default big@DOMAIN)")
	fs.StringVar(&o.startupName, "startup-workload", "7-startup", "startup: workload name in the results")
	fs.StringVar(&o.startupParams, "startup-params", "", "startup: parameters column of the table (default: N msgs in the store)")
}

func (o *options) users() int {
	return max(o.clients, o.pop3Clients, o.appendClients)
}

func (o *options) idleList() ([]int, error) {
	var out []int
	for _, f := range strings.Split(o.idleSteps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-idle: bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("skrytka-bench: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: skrytka-bench users|hash|load|run|startup|table|show [flags]")
	}
	cmd, args := os.Args[1], os.Args[2:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch cmd {
	case "table":
		err = cmdTable(args)
	case "hash":
		fs := flag.NewFlagSet("hash", flag.ExitOnError)
		pw := fs.String("password", "bench-password", "password")
		fs.Parse(args)
		var h string
		h, err = auth.HashPassword(*pw)
		if err == nil {
			fmt.Println(h)
		}
	case "show":
		fs := flag.NewFlagSet("show", flag.ExitOnError)
		prof := fs.String("profile", "realistic", "realistic, compact or fixed4k")
		i := fs.Int("i", 0, "message index")
		seed := fs.Uint64("seed", 1, "seed")
		fs.Parse(args)
		var p corpus.Profile
		if p, err = corpus.ParseProfile(*prof); err == nil {
			g := &corpus.Generator{Seed: *seed, Profile: p}
			os.Stdout.Write(g.Message(*i))
		}
	case "users", "load", "run", "startup", "warm":
		var o options
		fs := flag.NewFlagSet(cmd, flag.ExitOnError)
		o.flags(fs)
		fs.Parse(args)
		if o.t.PIDs, err = load.ParsePIDs(o.pids); err != nil {
			break
		}
		switch cmd {
		case "users":
			for _, u := range allUsers(&o) {
				fmt.Println(u)
			}
		case "load":
			err = cmdLoad(ctx, &o)
		case "run":
			err = cmdRun(ctx, &o)
		case "startup":
			err = cmdStartup(ctx, &o)
		case "warm":
			err = cmdWarm(ctx, &o)
		}
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// allUsers lists every account: u1..uN, big, idle, sink1..sinkS.
func allUsers(o *options) []string {
	var out []string
	for k := 1; k <= o.users(); k++ {
		out = append(out, o.t.User(k))
	}
	out = append(out, o.t.Named("big"), o.t.Named("idle"))
	for k := 1; k <= o.sessions; k++ {
		out = append(out, o.t.Named(fmt.Sprintf("sink%d", k)))
	}
	return out
}

func (o *options) userGen() *corpus.Generator {
	return &corpus.Generator{Seed: o.seed, Profile: corpus.Realistic, MaxBytes: o.maxBytes}
}

func (o *options) bigGen() *corpus.Generator {
	return &corpus.Generator{Seed: o.seed + 1, Profile: corpus.Compact}
}

func cmdLoad(ctx context.Context, o *options) error {
	t0 := time.Now()
	switch o.what {
	case "users":
		var rcpts []string
		for k := 1; k <= o.users(); k++ {
			rcpts = append(rcpts, o.t.User(k))
		}
		// idle@ and the sinks get one message each so that they exist.
		if err := load.Load(ctx, &o.t, o.userGen(), []string{o.t.Named("idle")}, 0, 1, 1, nil); err != nil {
			return err
		}
		if err := load.Load(ctx, &o.t, o.userGen(), rcpts, 0, o.perUser, o.loadSessions, nil); err != nil {
			return err
		}
		log.Printf("%s: loaded %d messages into each of %d accounts in %s", o.t.Name, o.perUser, len(rcpts), time.Since(t0).Round(time.Millisecond))
	case "big":
		err := load.Load(ctx, &o.t, o.bigGen(), []string{o.t.Named("big")}, 0, o.bigN, o.loadSessions, func(n int) {
			if n%10000 == 0 {
				log.Printf("%s: big: %d/%d (%.0f msgs/s)", o.t.Name, n, o.bigN, float64(n)/time.Since(t0).Seconds())
			}
		})
		if err != nil {
			return err
		}
		log.Printf("%s: loaded %d messages into big@ in %s", o.t.Name, o.bigN, time.Since(t0).Round(time.Millisecond))
	default:
		return fmt.Errorf("load: -what must be users or big")
	}
	return nil
}

func cmdRun(ctx context.Context, o *options) error {
	for _, w := range strings.Split(o.workloads, ",") {
		w = strings.TrimSpace(w)
		var res *load.Result
		var err error
		switch w {
		case "1", "2":
			lmtp := w == "1"
			if (lmtp && o.t.LMTP == 0) || (!lmtp && o.t.SMTP == 0) {
				log.Printf("%s: workload %s skipped: no port", o.t.Name, w)
				continue
			}
			res, err = load.Deliver(ctx, &o.t, lmtp, load.DeliveryParams{Sessions: o.sessions, Duration: o.deliverDur, Seed: o.seed + 2})
		case "3":
			res, err = load.IMAPMix(ctx, &o.t, load.MixParams{Clients: o.clients, Duration: o.mixDur, Preloaded: o.perUser, Seed: o.seed})
		case "4":
			if o.t.POP3 == 0 {
				log.Printf("%s: workload 4 skipped: no POP3 port", o.t.Name)
				continue
			}
			res, err = load.POP3(ctx, &o.t, load.POP3Params{Clients: o.pop3Clients, Preloaded: o.perUser})
		case "5":
			gen := o.bigGen()
			res, err = load.BigMailbox(ctx, &o.t, load.BigParams{User: o.t.Named("big"), Count: o.bigN, Gen: gen}, load.Expect(gen, o.bigN))
		case "6":
			steps, err := o.idleList()
			if err != nil {
				return err
			}
			var rs []*load.Result
			rs, err = load.Idle(ctx, &o.t, load.IdleParams{Steps: steps, User: o.t.Named("idle"), Parallel: o.idleParallel, Seed: o.seed + 3})
			if err != nil {
				return fmt.Errorf("%s: workload 6: %w", o.t.Name, err)
			}
			for _, r := range rs[:len(rs)-1] {
				if err := emit(o, r); err != nil {
					return err
				}
			}
			res = rs[len(rs)-1]
		case "8":
			res, err = load.Append(ctx, &o.t, load.AppendParams{Clients: o.appendClients, Duration: o.appendDur, Seed: o.seed + 4})
		default:
			return fmt.Errorf("unknown workload %q", w)
		}
		if err != nil {
			return fmt.Errorf("%s: workload %s: %w", o.t.Name, w, err)
		}
		if err := emit(o, res); err != nil {
			return err
		}
	}
	return nil
}

func cmdStartup(ctx context.Context, o *options) error {
	if o.t0ns == 0 {
		return errors.New("startup: -t0-ns is required")
	}
	user := o.startupUser
	if user == "" {
		user = o.t.Named("big")
	}
	params := o.startupParams
	if params == "" {
		params = fmt.Sprintf("%d msgs in the store", o.startupTotal)
	}
	res, err := load.Startup(ctx, &o.t, load.StartupParams{T0: time.Unix(0, o.t0ns), User: user, Want: o.startupWant,
		Workload: o.startupName, Params: params})
	if err != nil {
		return err
	}
	return emit(o, res)
}

// cmdWarm SELECTs every bulk account's INBOX once (see load.Warm).
func cmdWarm(ctx context.Context, o *options) error {
	var users []string
	for k := 1; k <= o.warmAccounts; k++ {
		users = append(users, fmt.Sprintf("%s%d@%s", o.warmPrefix, k, o.t.Domain))
	}
	t0 := time.Now()
	slowest, err := load.Warm(ctx, &o.t, users, o.startupWant)
	if err != nil {
		return err
	}
	log.Printf("%s: selected %d INBOXes in %s (slowest %s)", o.t.Name, len(users), time.Since(t0).Round(time.Millisecond), slowest.Round(time.Millisecond))
	return nil
}

func emit(o *options, res *load.Result) error {
	res.Round = o.round
	var parts []string
	for _, m := range res.Metrics {
		parts = append(parts, fmt.Sprintf("%s=%s", m.Name, strconv.FormatFloat(m.Value, 'f', 2, 64)))
	}
	fmt.Printf("%-8s round %d %-14s %s (checked %d)\n", res.Server, res.Round, res.Workload, strings.Join(parts, " "), res.Checked)
	if o.out == "" {
		return nil
	}
	f, err := os.OpenFile(o.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(res)
}
