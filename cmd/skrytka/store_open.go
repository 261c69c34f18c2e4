package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/skrytka/skrytka/internal/config"
	"github.com/skrytka/skrytka/internal/store"
	"github.com/skrytka/skrytka/internal/store/embedded"
)

// openStore opens the backend named by [storage] backend.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Storage.Backend {
	case "sqlite":
		st, err := embedded.Open(ctx, cfg.DataDir, embedded.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	default:
		return nil, &config.Error{File: cfg.File, Key: "storage.backend",
			Msg: fmt.Sprintf("backend %q is not part of this build yet; use \"sqlite\"", cfg.Storage.Backend)}
	}
}
