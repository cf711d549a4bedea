// Package mosquittotest starts a real mosquitto 2.x broker with the
// Dynamic Security plugin for tests and benchmarks in any package: a
// fresh configuration in a temporary directory, a free loopback port, one
// admin client allowed to send dynsec commands (what `mosquitto_ctrl
// dynsec init` makes), persistence on, and a stop/start pair to restart
// it. The binary is FLEXHUB_TEST_MOSQUITTO (.ci/run sets
// /usr/sbin/mosquitto); without it the caller is skipped, or failed when
// CI=true.
package mosquittotest

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// AdminUser and AdminPass are the dynsec admin client's account
	// (flexhub's account on the broker).
	AdminUser, AdminPass string
	// Dir holds the configuration, persistence and log.
	Dir string

	t    testing.TB
	bin  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// Binary returns FLEXHUB_TEST_MOSQUITTO, skipping tb when it is unset
// (failing it when CI=true).
func Binary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv("FLEXHUB_TEST_MOSQUITTO")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CI=true but FLEXHUB_TEST_MOSQUITTO is not set (.ci/run installs mosquitto and sets it to /usr/sbin/mosquitto)")
		}
		tb.Skip("FLEXHUB_TEST_MOSQUITTO is unset: set it to a mosquitto 2.x binary (e.g. /usr/sbin/mosquitto, Debian package mosquitto) to run against mosquitto too")
	}
	return bin
}

// Options change the broker's configuration.
type Options struct {
	// NoPersistence turns persistence off (benchmarks).
	NoPersistence bool
	// MaxQueued is max_queued_messages per session: 0 for 100,000, -1
	// for no limit (a benchmark's subscriber slower than its publishers
	// must not lose messages).
	MaxQueued int
}

// Start starts a broker that stops when tb ends (its log is printed when
// tb failed).
func Start(tb testing.TB) *Broker {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, o Options) *Broker {
	tb.Helper()
	bin := Binary(tb)
	b := &Broker{t: tb, bin: bin, Dir: tb.TempDir(), AdminUser: "flexhub", AdminPass: rand.Text()}
	plugin := dynsecPlugin(tb, bin)
	dynsec := filepath.Join(b.Dir, "dynamic-security.json")
	writeDynsec(tb, dynsec, b.AdminUser, b.AdminPass)
	port := freePort(tb)
	b.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	b.conf = filepath.Join(b.Dir, "mosquitto.conf")
	maxQueued := o.MaxQueued
	switch {
	case maxQueued == 0:
		maxQueued = 100_000
	case maxQueued < 0:
		maxQueued = 0 // mosquitto: no limit
	}
	user := ""
	if os.Getuid() == 0 { // mosquitto started as root drops to user mosquitto, which cannot read the temp dir
		user = "user root\n"
	}
	conf := user + fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous false
plugin %s
plugin_opt_config_file %s
persistence %t
persistence_location %s/
autosave_interval 1
max_queued_messages %d
log_dest file %s
log_type error
log_type warning
log_type notice
`, port, plugin, dynsec, !o.NoPersistence, b.Dir, maxQueued, b.LogPath())
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	b.Start()
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			tb.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	return b
}

// LogPath is the broker's log file.
func (b *Broker) LogPath() string { return filepath.Join(b.Dir, "mosquitto.log") }

// Log returns the broker's log so far.
func (b *Broker) Log() string {
	l, _ := os.ReadFile(b.LogPath())
	return string(l)
}

// Start (re)starts the process and waits until it listens.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.cmd = cmd
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", b.Addr)
		if err == nil {
			c.Close()
			return
		}
		if i > 100 {
			b.t.Fatalf("mosquitto did not start listening on %s: %v\n%s", b.Addr, err, b.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the process (SIGTERM, so that it saves its persistence
// file; SIGKILL after 10 s).
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	cmd := b.cmd
	b.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// dynsecPlugin finds mosquitto_dynamic_security.so (FLEXHUB_TEST_MOSQUITTO_DYNSEC,
// else beside Debian's or a /usr/local install).
func dynsecPlugin(tb testing.TB, bin string) string {
	cands := []string{os.Getenv("FLEXHUB_TEST_MOSQUITTO_DYNSEC")}
	m, _ := filepath.Glob("/usr/lib/*/mosquitto_dynamic_security.so")
	cands = append(cands, m...)
	cands = append(cands, "/usr/lib/mosquitto_dynamic_security.so", "/usr/local/lib/mosquitto_dynamic_security.so",
		filepath.Join(filepath.Dir(bin), "../lib/mosquitto_dynamic_security.so"))
	for _, c := range cands {
		if c != "" {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
	}
	tb.Fatalf("mosquitto's dynamic security plugin not found; set FLEXHUB_TEST_MOSQUITTO_DYNSEC to mosquitto_dynamic_security.so")
	return ""
}

// writeDynsec writes the plugin's initial JSON (what `mosquitto_ctrl dynsec
// init` makes): one admin client allowed to send dynsec commands. The
// password is PBKDF2-SHA512 as the plugin stores it.
func writeDynsec(tb testing.TB, path, user, pass string) {
	salt := make([]byte, 12)
	rand.Read(salt)
	hash, err := pbkdf2.Key(sha512.New, pass, salt, 101, 64)
	if err != nil {
		tb.Fatal(err)
	}
	ctl := "$CONTROL/dynamic-security/#"
	doc := map[string]any{
		"clients": []any{map[string]any{"username": user, "textName": "flexhub", "password": base64.StdEncoding.EncodeToString(hash),
			"salt": base64.StdEncoding.EncodeToString(salt), "iterations": 101, "roles": []any{map[string]any{"rolename": "admin"}}}},
		"roles": []any{map[string]any{"rolename": "admin", "acls": []any{
			map[string]any{"acltype": "publishClientSend", "topic": ctl, "allow": true},
			map[string]any{"acltype": "publishClientReceive", "topic": ctl, "allow": true},
			map[string]any{"acltype": "subscribePattern", "topic": ctl, "allow": true},
		}}},
		"defaultACLAccess": map[string]bool{"publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
	}
	raw, _ := json.Marshal(doc)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
