package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeHTTPS runs the binary with a certificate and talks to it over
// TLS, trusting only that certificate.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get("https://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "https://") {
		t.Errorf("serve must announce https: %s", out.String())
	}
	// Plain HTTP on the TLS port is refused.
	if res, err := http.Get("http://" + addr + "/readyz"); err == nil && res.StatusCode == 200 {
		t.Errorf("plain HTTP must not be served on the HTTPS port")
	}
}

func TestServeRefusesHalfTLSConfig(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"serve", "--tls-cert", "x.pem"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("a certificate without a key must be refused: %v", err)
	}
	err = run(t.Context(), []string{"serve", "--data-dir", t.TempDir(), "--tls-cert", "missing.pem", "--tls-key", "missing.key"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Fatalf("an unreadable certificate must be refused before listening: %v", err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flexhub test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
