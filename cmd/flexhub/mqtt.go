package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/mqtt"
)

// MQTT in `flexhub serve` (docs/MQTT.md): the embedded broker by default
// (--mqtt-addr, FLEXHUB_MQTT_ADDR, ":1883"; "off" disables it), or an
// external MQTT 5 broker (--mqtt-broker mqtt://host:port,
// FLEXHUB_MQTT_BROKER) that flexhub joins as a client with
// FLEXHUB_MQTT_USERNAME / FLEXHUB_MQTT_PASSWORD and whose Dynamic
// Security plugin it provisions as keys are issued and revoked.

// defaultMQTTAddr is where the embedded broker listens unless told.
const defaultMQTTAddr = ":1883"

// startMQTT starts flexhub's MQTT transport and hands it to the service
// (publisher for orders and alerts, subscriber for acks and meter data,
// provisioner of keys on an external broker). The returned stop closes
// it; call it before the store closes.
func startMQTT(ctx context.Context, c *config, getenv func(string) string, svc *app.Service, log *slog.Logger, stdout io.Writer) (stop func(), err error) {
	var bus mqtt.Bus
	switch {
	case c.mqttBroker != "":
		user, pass := getenv("FLEXHUB_MQTT_USERNAME"), getenv("FLEXHUB_MQTT_PASSWORD")
		if user == "" || pass == "" {
			return nil, usageError{"--mqtt-broker needs flexhub's broker account in FLEXHUB_MQTT_USERNAME and FLEXHUB_MQTT_PASSWORD (a dynamic security admin client; see docs/MQTT.md)"}
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// One stable session per instance: the broker keeps its
		// subscriptions and queues acks and meter data for it while it is
		// away, also across a broker restart. Every instance handles every
		// message (acks and readings are idempotent) unless
		// FLEXHUB_MQTT_SHARED_GROUP makes them share the work.
		clientID := getenv("FLEXHUB_MQTT_CLIENT_ID")
		if clientID == "" {
			host, _ := os.Hostname()
			clientID = "flexhub-" + host
		}
		ext, err := mqtt.ConnectExternal(cctx, mqtt.ExternalConfig{URL: c.mqttBroker, Username: user, Password: pass,
			ClientID: clientID, SharedGroup: getenv("FLEXHUB_MQTT_SHARED_GROUP"), Auth: svc.MQTTAuthorizer(), Log: log})
		if err != nil {
			return nil, err
		}
		prov := ext.Dynsec()
		if err := prov.Setup(cctx); err != nil {
			ext.Close()
			return nil, fmt.Errorf("mqtt broker %s: dynamic security: %w", c.mqttBroker, err)
		}
		svc.SetMQTTProvisioner(prov)
		bus = ext
		log.Info("mqtt: external broker", "broker", c.mqttBroker, "user", user, "client_id", clientID)
		fmt.Fprintf(stdout, "MQTT: external broker %s (as %s); API keys issued from now on are provisioned there\n", c.mqttBroker, user)
	case c.mqttAddr == "off":
		log.Info("mqtt: off")
		return func() {}, nil
	default:
		var tlsCfg *tls.Config
		if c.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("TLS certificate: %w", err)
			}
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		}
		if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		e, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: c.mqttAddr, Auth: svc.MQTTAuthorizer(), TLS: tlsCfg,
			SessionStore: filepath.Join(c.dataDir, "mqtt-sessions.db"), Log: log})
		if err != nil {
			if c.mqttAddr == defaultMQTTAddr && getenv("FLEXHUB_MQTT_ADDR") == "" {
				// The default port may be taken (a local mosquitto, a second
				// flexhub): serve the API anyway, and say so.
				log.Warn("mqtt: embedded broker not started; set --mqtt-addr (or off)", "addr", c.mqttAddr, "err", err)
				fmt.Fprintf(stdout, "MQTT: embedded broker NOT started on %s (%v); set --mqtt-addr\n", c.mqttAddr, err)
				return func() {}, nil
			}
			return nil, err
		}
		bus = e
		svc.SetMQTTProvisioner(e) // a revoked key's open connections are dropped
		scheme := "mqtt"
		if tlsCfg != nil {
			scheme = "mqtts"
		}
		log.Info("mqtt: embedded broker listening", "addr", e.Addr(), "scheme", scheme)
		fmt.Fprintf(stdout, "MQTT: embedded broker listening on %s://%s (user name = party id, password = API key)\n", scheme, e.Addr())
	}

	svc.SetPublisher(bus)
	serveCtx, cancel := context.WithCancel(context.Background())
	if err := svc.ServeMQTT(serveCtx, mqtt.Handlers{Bus: bus}); err != nil {
		cancel()
		bus.Close()
		return nil, fmt.Errorf("mqtt: subscribe flexhub's handlers: %w", err)
	}
	return func() {
		cancel()
		svc.SetMQTTProvisioner(nil)
		if err := bus.Close(); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("mqtt: close", "err", err)
		}
		log.Info("mqtt: stopped")
	}, nil
}
