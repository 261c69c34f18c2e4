package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/skrytka/skrytka/internal/store/postgres"
)

// cmdMigrate applies the store's schema migrations and exits: on
// PostgreSQL before the first node starts (nodes also migrate at start,
// under an advisory lock); on the embedded store it opens and closes the
// store, which migrates it.
func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	file := fs.String("config", "", "configuration file (TOML)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("migrate: takes no arguments")
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if cfg.Storage.Backend == "postgres" {
		if err := postgres.Migrate(ctx, cfg.Storage.DSN); err != nil {
			return fmt.Errorf("migrate (postgres): %w", err)
		}
		fmt.Fprintln(stdout, "postgres schema is current")
		return nil
	}
	st, err := openStore(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	fmt.Fprintf(stdout, "embedded store in %s is current\n", cfg.DataDir)
	return nil
}
