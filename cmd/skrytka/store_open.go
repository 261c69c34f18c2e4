package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
	"github.com/skrytka/skrytka/internal/store/postgres"
)

// openStore opens the backend named by [storage] backend. Only main (and
// the backends' own tests) import backend packages.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Storage.Backend {
	case "postgres":
		st, err := postgres.Open(ctx, cfg.Storage.DSN, postgres.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store (postgres): %w", err)
		}
		return st, nil
	default: // "sqlite", checked by config.Validate
		st, err := embedded.Open(ctx, cfg.DataDir, embedded.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
}
