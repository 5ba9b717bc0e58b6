package libprocess

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI writes a CA and a certificate it signed, plus a self-signed
// stranger, to dir.
type testPKI struct {
	caFile, certFile, keyFile string
	strangerCert, strangerKey string
	clientCert                tls.Certificate
	strangerClient            tls.Certificate
	caPool                    *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "procpanda test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (string, string, tls.Certificate) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		cf, kf := write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kder)
		pair, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			t.Fatal(err)
		}
		return cf, kf, pair
	}
	p := &testPKI{caFile: write("ca.crt", "CERTIFICATE", caDER), caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	p.certFile, p.keyFile, p.clientCert = leaf("node", caCert, caKey)
	p.strangerCert, p.strangerKey, p.strangerClient = leaf("stranger", nil, nil)
	return p
}

func (p *testPKI) config(downgrade, require bool) func(*Config) {
	return func(c *Config) {
		c.TLS = TLSConfig{Enabled: true, CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile,
			VerifyCert: true, RequireCert: require, SupportDowngrade: downgrade}
	}
}

const plainMessage = "POST /target/m HTTP/1.1\r\nUser-Agent: libprocess/a@127.0.0.1:1\r\nLibprocess-From: a@127.0.0.1:1\r\nConnection: Keep-Alive\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"

func sendTLS(t *testing.T, addr string, cfg *tls.Config) (rawResponse, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return rawResponse{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(plainMessage)); err != nil {
		return rawResponse{}, err
	}
	return readResponse(bufio.NewReader(c))
}

func TestTLSInboundDowngradeAndOutbound(t *testing.T) {
	pki := newTestPKI(t)
	rt := startRuntime(t, pki.config(true, false))
	rec := spawnRecorder(t, rt, "target", "m")

	// A TLS peer with a certificate from the CA.
	resp, err := sendTLS(t, rt.Addr().HostPort(), &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.clientCert}})
	if err != nil || resp.Status != 202 {
		t.Fatalf("TLS message: %v %q", err, resp.StatusLine)
	}
	rec.next(t)
	// Downgrade: a plaintext peer on the same port.
	c := dialRaw(t, rt)
	c.write(plainMessage)
	if r := c.read(); r.Status != 202 {
		t.Fatalf("plaintext with downgrade: %q", r.StatusLine)
	}
	rec.next(t)
	// VerifyCert: a peer presenting a certificate from another CA fails.
	// (GetClientCertificate forces the client to present it; Go clients
	// otherwise send only certificates matching the server's CA list.)
	stranger := &tls.Config{RootCAs: pki.caPool, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &pki.strangerClient, nil
	}}
	if r, err := sendTLS(t, rt.Addr().HostPort(), stranger); err == nil {
		t.Fatalf("a peer with an untrusted certificate was accepted: %q", r.StatusLine)
	}

	// Outbound: another TLS runtime sends to this one.
	other := startRuntime(t, pki.config(false, true))
	sender, _ := spawnSender(t, other, "source")
	if err := sender.Send(rec.Self(), "m", []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if m := rec.next(t); string(m.Body) != "over tls" || m.From != sender.Self() {
		t.Fatalf("outbound TLS message: %+v", m)
	}
}

func TestTLSWithoutDowngradeRefusesPlaintext(t *testing.T) {
	pki := newTestPKI(t)
	rt := startRuntime(t, pki.config(false, true))
	spawnRecorder(t, rt, "target", "m")
	c := dialRaw(t, rt)
	c.write(plainMessage)
	if resp, err := readResponse(c.r); err == nil && resp.Status == 202 {
		t.Fatal("plaintext message accepted on a TLS-only port")
	}
	// RequireCert: a TLS peer without a certificate is refused.
	if _, err := sendTLS(t, rt.Addr().HostPort(), &tls.Config{RootCAs: pki.caPool}); err == nil {
		t.Fatal("a peer without a certificate was accepted with RequireCert")
	}
	if resp, err := sendTLS(t, rt.Addr().HostPort(), &tls.Config{RootCAs: pki.caPool, Certificates: []tls.Certificate{pki.clientCert}}); err != nil || resp.Status != 202 {
		t.Fatalf("peer with a certificate: %v %q", err, resp.StatusLine)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TLS.Enabled = true
	if _, err := New(cfg); err == nil {
		t.Fatal("TLS without a certificate accepted")
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "/nonexistent.crt", "/nonexistent.key"
	if _, err := New(cfg); err == nil {
		t.Fatal("TLS with missing files accepted")
	}
	cfg = DefaultConfig()
	err := cfg.ApplyEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"LIBPROCESS_SSL_ENABLED": "true", "LIBPROCESS_SSL_CERT_FILE": "/c", "LIBPROCESS_SSL_SUPPORT_DOWNGRADE": "1"}[k]
		return v, ok
	})
	if err != nil || !cfg.TLS.Enabled || cfg.TLS.CertFile != "/c" || !cfg.TLS.SupportDowngrade {
		t.Fatalf("ApplyEnv SSL: %v %+v", err, cfg.TLS)
	}
	if err := cfg.ApplyEnv(func(k string) (string, bool) { return "maybe", k == "LIBPROCESS_SSL_VERIFY_CERT" }); err == nil {
		t.Fatal("bad boolean accepted")
	}
}
