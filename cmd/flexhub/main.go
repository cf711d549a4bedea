// Command flexhub runs the flexhub platform: `flexhub serve` starts the
// API on the embedded SQLite store (or PostgreSQL with --db postgres://...).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/app"
	fhttp "github.com/flexhub/flexhub/http"
	"github.com/flexhub/flexhub/postgres"
	"github.com/flexhub/flexhub/sqlite"
)

// schedulerInterval is how often the scheduler looks for due session
// gates: a gate moves at most this late.
const schedulerInterval = 500 * time.Millisecond

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flexhub:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `flexhub — the open platform for electricity flexibility

Usage:
  flexhub serve [flags]     run the API (embedded SQLite by default)
  flexhub migrate [flags]   apply database migrations and exit
  flexhub demo [flags]      one market day on the demo register: market, activations, live monitoring (--json for machines)
  flexhub sim [flags]       simulated FSP systems over MQTT
  flexhub baseline evaluate FILE   compare baseline methods on real meter data
  flexhub grid analyse [flags]     a forecast day on a grid: violations, flexibility needs, hosting capacity
  flexhub audit verify      check the audit trail's hash chain
  flexhub keygen            print a fresh API key (for FLEXHUB_ADMIN_KEY)
  flexhub version           print the version

Run 'flexhub serve -h' for the flags. Every flag can also be set in the
environment (FLEXHUB_ADDR, FLEXHUB_DATA_DIR, FLEXHUB_DB, FLEXHUB_LOG_LEVEL);
flags win over the environment.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "demo":
		return marketDemo(ctx, args[1:], getenv, stdout, stderr)
	case "sim": // simulated FSPs and resources (cmd/flexhub/sim.go)
		return simulate(ctx, args[1:], getenv, stdout, stderr)
	case "grid": // grid operations analysis (cmd/flexhub/grid.go)
		return gridCmd(ctx, args[1:], stdout, stderr)
	case "baseline": // baseline evaluation on meter data (cmd/flexhub/baseline.go)
		return baselineCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		if len(args) < 2 || args[1] != "verify" {
			return usageError{"usage: flexhub audit verify [flags]"}
		}
		return auditVerify(ctx, args[2:], getenv, stdout, stderr)
	case "keygen":
		token, _, _ := app.NewToken()
		fmt.Fprintln(stdout, token)
		return nil
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "flexhub", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

// config is what every subcommand shares.
type config struct {
	addr     string
	dataDir  string
	db       string
	logLevel string
	demo     bool
	dataSet  string
	tlsCert  string
	tlsKey   string
	json     bool
	live     demoLive         // flexhub demo's activation part (cmd/flexhub/demo_activation.go)
	coord    demoCoordination // flexhub demo's coordination comparison (cmd/flexhub/demo_coordination.go)
	// MQTT (cmd/flexhub/mqtt.go)
	mqttAddr   string
	mqttBroker string
	anonK      int
}

func parseFlags(name string, args []string, getenv func(string) string, stderr io.Writer, withServe bool) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.dataDir, "data-dir", env("FLEXHUB_DATA_DIR", "flexhub-data"), "directory for the embedded database (env FLEXHUB_DATA_DIR)")
	fs.StringVar(&c.db, "db", env("FLEXHUB_DB", ""), "database: empty for SQLite in the data directory, a file path, or postgres://... (env FLEXHUB_DB)")
	fs.StringVar(&c.logLevel, "log-level", env("FLEXHUB_LOG_LEVEL", "info"), "debug, info, warn or error (env FLEXHUB_LOG_LEVEL)")
	if name == "demo" {
		fs.BoolVar(&c.json, "json", false, "print the day's outcome as JSON instead of tables")
		c.live.flags(fs)
		c.coord.flags(fs)
	}
	if withServe {
		fs.StringVar(&c.addr, "addr", env("FLEXHUB_ADDR", "127.0.0.1:8080"), "listen address (env FLEXHUB_ADDR)")
		fs.BoolVar(&c.demo, "demo", env("FLEXHUB_DEMO", "") == "1", "load the demo register on first start and print its API keys (env FLEXHUB_DEMO=1)")
		fs.StringVar(&c.tlsCert, "tls-cert", env("FLEXHUB_TLS_CERT", ""), "PEM certificate (chain) to serve HTTPS; with --tls-key (env FLEXHUB_TLS_CERT)")
		fs.StringVar(&c.tlsKey, "tls-key", env("FLEXHUB_TLS_KEY", ""), "PEM private key for --tls-cert (env FLEXHUB_TLS_KEY)")
		fs.StringVar(&c.mqttAddr, "mqtt-addr", env("FLEXHUB_MQTT_ADDR", defaultMQTTAddr), "embedded MQTT broker listen address, or off (env FLEXHUB_MQTT_ADDR)")
		fs.StringVar(&c.mqttBroker, "mqtt-broker", env("FLEXHUB_MQTT_BROKER", ""), "use this external MQTT 5 broker (mqtt://host:port) instead of the embedded one; account in FLEXHUB_MQTT_USERNAME/FLEXHUB_MQTT_PASSWORD (env FLEXHUB_MQTT_BROKER)")
		k, err := strconv.Atoi(env("FLEXHUB_ANONYMITY_K", strconv.Itoa(app.DefaultAnonymityK)))
		if err != nil {
			return nil, usageError{fmt.Sprintf("FLEXHUB_ANONYMITY_K %q is not a whole number", getenv("FLEXHUB_ANONYMITY_K"))}
		}
		fs.IntVar(&c.anonK, "anonymity-k", k, "the fewest consumers an anonymised aggregate is published over, at least 2 (env FLEXHUB_ANONYMITY_K)")
		fs.StringVar(&c.dataSet, "shared-data", env("FLEXHUB_SHARED_DATA", ""), "folder with the demo's grid and meter data (default: ../shared/data beside the working directory or the binary)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if withServe && c.anonK < app.MinAnonymityK {
		return nil, usageError{fmt.Sprintf("--anonymity-k %d: at least %d consumers make a group", c.anonK, app.MinAnonymityK)}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usageError{"--tls-cert and --tls-key go together: give both to serve HTTPS, or neither"}
	}
	return c, nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("log level %q: use debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// openStore opens the configured store, migrating it when migrate is true.
func openStore(ctx context.Context, c *config, migrate bool) (flexhub.Store, string, error) {
	if strings.HasPrefix(c.db, "postgres://") || strings.HasPrefix(c.db, "postgresql://") {
		s, err := postgres.Open(ctx, c.db, migrate)
		return s, "postgres", err
	}
	path := c.db
	if path == "" {
		if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
			return nil, "", fmt.Errorf("create data directory: %w", err)
		}
		path = filepath.Join(c.dataDir, "flexhub.db")
	}
	path = strings.TrimPrefix(path, "sqlite:")
	s, err := sqlite.Open(ctx, path, migrate)
	return s, "sqlite " + path, err
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags("migrate", args, getenv, stderr, false)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, c, false)
	if err != nil {
		return err
	}
	defer store.Close()
	var applied []string
	if strings.HasPrefix(where, "postgres") {
		applied, err = postgres.Migrate(ctx, dbOf(store))
	} else {
		applied, err = sqlite.Migrate(ctx, dbOf(store))
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s: schema is up to date\n", where)
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "%s: applied %s\n", where, m)
	}
	return nil
}

func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags("audit verify", args, getenv, stderr, false)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, c, false)
	if err != nil {
		return err
	}
	defer store.Close()
	r, err := app.VerifyStore(ctx, store)
	if err != nil {
		return err
	}
	if !r.OK {
		fmt.Fprintf(stdout, "%s: audit chain BROKEN at entry %d: %s (%d entries before it verified)\n", where, r.FirstBroken, r.Problem, r.Entries)
		return fmt.Errorf("audit chain broken at entry %d", r.FirstBroken)
	}
	fmt.Fprintf(stdout, "%s: audit chain OK: %d entries, head %s\n", where, r.Entries, r.Head)
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseFlags("serve", args, getenv, stderr, true)
	if err != nil {
		return err
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := app.New(store, log)
	if err := svc.SetAnonymityK(c.anonK); err != nil {
		return usageError{"--anonymity-k: " + err.Error()}
	}
	// FLEXHUB_TEST_CLOCK_OFFSET, for tests only: the service's clock runs
	// this far ahead of the wall clock (a Go duration), so that an
	// end-to-end test can place a real-time activation at the end of a
	// quarter hour and settle that quarter hour at once.
	if v := getenv("FLEXHUB_TEST_CLOCK_OFFSET"); v != "" {
		off, err := time.ParseDuration(v)
		if err != nil {
			return usageError{fmt.Sprintf("FLEXHUB_TEST_CLOCK_OFFSET %q: %v", v, err)}
		}
		svc.SetClock(func() time.Time { return time.Now().UTC().Add(off).Truncate(time.Microsecond) })
	}

	// MQTT (cmd/flexhub/mqtt.go): before keys are issued, so that an
	// external broker gets them; stopped after the scheduler, before the store.
	stopMQTT, err := startMQTT(ctx, c, getenv, svc, log, stdout)
	if err != nil {
		return err
	}
	defer stopMQTT()

	admin, err := svc.Bootstrap(ctx, getenv("FLEXHUB_ADMIN_KEY"))
	if err != nil {
		return fmt.Errorf("bootstrap administrator: %w", err)
	}
	if admin != nil {
		if getenv("FLEXHUB_ADMIN_KEY") != "" {
			fmt.Fprintf(stdout, "Created the administrator (party %s) with the API key from FLEXHUB_ADMIN_KEY.\n", admin.PartyID)
		} else {
			fmt.Fprintf(stdout, "Created the administrator (party %s). Its API key, shown only now:\n\n    %s\n\n", admin.PartyID, admin.Token)
		}
	}
	if c.demo {
		if err := loadDemo(ctx, svc, c, stdout); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	// The scheduler opens and closes market session gates on time. It
	// stops before the store closes (defers run last-in, first-out).
	schedCtx, stopScheduler := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		svc.RunScheduler(schedCtx, schedulerInterval)
	}()
	defer func() {
		stopScheduler()
		<-schedDone
	}()

	// Webhooks: the dispatcher sends the outbox (app/webhook.go); private
	// and loopback receivers only with FLEXHUB_WEBHOOK_ALLOW_PRIVATE=true.
	hookCtx, stopHooks := context.WithCancel(context.Background())
	hookDone := make(chan struct{})
	go func() {
		defer close(hookDone)
		svc.RunWebhookDispatcher(hookCtx, app.NewWebhookClient(getenv("FLEXHUB_WEBHOOK_ALLOW_PRIVATE") == "true"))
	}()
	defer func() {
		stopHooks()
		<-hookDone
	}()

	if c.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           fhttp.NewServer(svc, log, Version),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	log.Info("flexhub serving", "addr", ln.Addr().String(), "scheme", scheme, "store", where, "version", Version)
	fmt.Fprintf(stdout, "flexhub %s listening on %s://%s (store: %s); console at /, API docs at /docs\n", Version, scheme, ln.Addr().String(), where)
	errc := make(chan error, 1)
	go func() {
		if c.tlsCert != "" {
			errc <- srv.ServeTLS(ln, c.tlsCert, c.tlsKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}
