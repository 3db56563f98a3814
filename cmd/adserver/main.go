// Command adserver runs one ad server node: config → wiring → serve until
// SIGTERM, then drain and stop. See adserver -help for every setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/node"
)

func main() {
	cfg, err := config.Load(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adserver:", err)
		os.Exit(2)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if err := run(cfg, log); err != nil {
		log.Error("adserver stopped", "error", err)
		os.Exit(1)
	}
}

func run(cfg config.Config, log *slog.Logger) error {
	n, err := node.Start(cfg, log)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Info("signal received; draining", "signal", s.String(), "drain", cfg.Drain)
	case err := <-n.Err():
		_ = n.Stop(context.Background())
		return err
	}
	n.Drain()
	select {
	case <-time.After(cfg.Drain):
	case <-sig:
		log.Warn("second signal; skipping the rest of the drain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = n.Stop(ctx)
	log.Info("adserver stopped")
	return err
}
