// Command pineconed is the pineconed mesh VPN daemon. The wiring lives in
// package daemon; this file handles flags, the configuration, signals and
// exit codes:
//
//	0  clean shutdown (SIGINT, SIGTERM) or an information flag done
//	1  the daemon could not start or run (TUN, sockets, key file…), or
//	   stopped on a fault such as its TUN deleted from outside
//	2  bad command line or bad configuration; nothing was changed
//
// Exit status 2 is what the systemd unit's RestartPreventExitStatus names:
// restarting cannot fix a configuration file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/daemon"
	"github.com/pineconed/pineconed/internal/version"
	"github.com/pineconed/pineconed/overlay/wire"
)

const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cliFlags are the command-line options; newFlags defines them, and the
// man page pineconed(8) is generated from the same definitions' -h output.
type cliFlags struct {
	configPath                                      *string
	genconf, showAddr, showSubnet, showKey, version *bool
	pprofAddr                                       *string
}

func newFlags(stderr io.Writer) (*flag.FlagSet, cliFlags) {
	flags := flag.NewFlagSet("pineconed", flag.ContinueOnError)
	flags.SetOutput(stderr)
	return flags, cliFlags{
		configPath: flags.String("config", config.DefaultPath, "configuration file (a missing default file means built-in defaults)"),
		genconf:    flags.Bool("genconf", false, "print a complete commented configuration with the defaults and exit"),
		showAddr:   flags.Bool("address", false, "print this node's IPv6 address (from the key file) and exit"),
		showSubnet: flags.Bool("subnet", false, "print this node's /64 subnet (from the key file) and exit"),
		showKey:    flags.Bool("publickey", false, "print this node's public key (from the key file) and exit"),
		version:    flags.Bool("version", false, "print the version and exit"),
		pprofAddr:  flags.String("debug-pprof", "", "serve Go's net/http/pprof profiles (CPU, heap, goroutine, block, mutex) on this TCP address, e.g. 127.0.0.1:6060; off when empty. For profiling only: anyone who can reach the address can read them"),
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	flags, f := newFlags(stderr)
	configPath, genconf, showAddr, showSubnet, showKey, showVersion, pprofAddr :=
		f.configPath, f.genconf, f.showAddr, f.showSubnet, f.showKey, f.version, f.pprofAddr
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "pineconed: unexpected arguments: %v\n", flags.Args())
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintln(stdout, "pineconed", version.String())
		return exitOK
	}
	if *genconf {
		stdout.Write(config.Generate(config.Default()))
		return exitOK
	}

	explicit := false
	flags.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})
	cfg, err := daemon.LoadConfig(*configPath, !explicit)
	if err != nil {
		fmt.Fprintf(stderr, "pineconed: bad configuration:\n%v\n", err)
		return exitConfig
	}

	if *showAddr || *showSubnet || *showKey {
		return printIdentity(cfg, *showAddr, *showSubnet, *showKey, stdout, stderr)
	}

	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logger := daemon.NewLogger(stderr, cfg.LogFormat, level)
	slog.SetDefault(logger)
	if !explicit {
		if _, err := os.Stat(*configPath); errors.Is(err, fs.ErrNotExist) {
			logger.Info("no configuration file; running on built-in defaults", "file", *configPath)
		}
	}

	if *pprofAddr != "" {
		stopPprof, err := startPprof(*pprofAddr)
		if err != nil {
			logger.Error("cannot start the pprof listener", "err", err)
			return exitFail
		}
		defer stopPprof()
		logger.Warn("debug pprof listener on; do not leave it on in production", "addr", *pprofAddr)
	}

	d, err := daemon.New(daemon.Options{
		Config:     cfg,
		ConfigPath: *configPath,
		Logger:     logger,
		Level:      level,
		Version:    version.String(),
	})
	if err != nil {
		var bad config.Errors
		if errors.As(err, &bad) {
			// Found before anything was changed on the system.
			fmt.Fprintf(stderr, "pineconed: bad configuration:\n%v\n", err)
			return exitConfig
		}
		logger.Error("cannot start", "err", err)
		return exitFail
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload, stopRelay := relayReloads(hup)
	defer stopRelay()
	if err := d.Run(ctx, reload); err != nil {
		return exitFail
	}
	return exitOK
}

// relayReloads turns the signals arriving on hup into reload requests for
// daemon.Run, several pending signals making one request. The relay's
// goroutine is owned by the returned stop function, which ends it and
// waits for it (call it once): signal.Stop does not close hup, so without
// stop the goroutine would outlive run.
func relayReloads(hup <-chan os.Signal) (reload <-chan struct{}, stop func()) {
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, func() {
		close(done)
		wg.Wait()
	}
}

// printIdentity prints the node's identity from its existing key file.
// It never creates a key: a new identity is made only by the daemon itself,
// where its creation is logged loudly.
func printIdentity(cfg config.Config, addr, subnet, key bool, stdout, stderr io.Writer) int {
	priv, err := config.LoadKey(cfg.PrivateKeyFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "pineconed: no private key at %s yet; start the daemon once to create it\n", cfg.PrivateKeyFile)
		} else {
			fmt.Fprintf(stderr, "pineconed: %v\n", err)
		}
		return exitFail
	}
	k := wire.PublicKeyOf(priv)
	if key {
		fmt.Fprintln(stdout, k.String())
	}
	if addr {
		fmt.Fprintln(stdout, addressing.NodeAddr(k).String())
	}
	if subnet {
		fmt.Fprintln(stdout, addressing.Subnet(k).String())
	}
	return exitOK
}
