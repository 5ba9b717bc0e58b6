package libprocess

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSConfig is libprocess' SSL configuration (docs/libprocess-wire.md §8), read from the
// LIBPROCESS_SSL_* variables by ApplyEnv.
type TLSConfig struct {
	// Enabled turns TLS on for the listening port and for outbound
	// connections (LIBPROCESS_SSL_ENABLED).
	Enabled bool
	// CertFile and KeyFile are this instance's certificate chain and key in
	// PEM (LIBPROCESS_SSL_CERT_FILE, LIBPROCESS_SSL_KEY_FILE). The same
	// certificate is presented to peers this instance connects to.
	CertFile, KeyFile string
	// CAFile and CADir hold the PEM certificates peers are verified against
	// (LIBPROCESS_SSL_CA_FILE, LIBPROCESS_SSL_CA_DIR); without either the
	// system pool is used.
	CAFile, CADir string
	// VerifyCert verifies peer certificates when peers present one — and,
	// when connecting out, always (LIBPROCESS_SSL_VERIFY_CERT).
	VerifyCert bool
	// RequireCert makes inbound peers present a verified certificate
	// (LIBPROCESS_SSL_REQUIRE_CERT); it implies VerifyCert.
	RequireCert bool
	// SupportDowngrade also accepts plaintext connections on the TLS port,
	// told apart by their first byte (LIBPROCESS_SSL_SUPPORT_DOWNGRADE).
	SupportDowngrade bool
}

// tlsHandshakeByte is the first byte of every TLS connection (a handshake
// record).
const tlsHandshakeByte = 0x16

// tlsConfigs builds the server and client configurations.
func (c *TLSConfig) tlsConfigs() (server, client *tls.Config, err error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, nil, errors.New("TLS needs a certificate and a key (LIBPROCESS_SSL_CERT_FILE, LIBPROCESS_SSL_KEY_FILE)")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	var pool *x509.CertPool
	if c.CAFile != "" || c.CADir != "" {
		pool = x509.NewCertPool()
		files := []string{}
		if c.CAFile != "" {
			files = append(files, c.CAFile)
		}
		if c.CADir != "" {
			entries, err := os.ReadDir(c.CADir)
			if err != nil {
				return nil, nil, fmt.Errorf("reading CA directory %s: %w", c.CADir, err)
			}
			for _, e := range entries {
				if !e.IsDir() {
					files = append(files, filepath.Join(c.CADir, e.Name()))
				}
			}
		}
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("reading CA file %s: %w", f, err)
			}
			if !pool.AppendCertsFromPEM(pem) && f == c.CAFile {
				return nil, nil, fmt.Errorf("CA file %s holds no PEM certificate", f)
			}
		}
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	switch {
	case c.RequireCert:
		server.ClientAuth = tls.RequireAndVerifyClientCert
	case c.VerifyCert:
		server.ClientAuth = tls.VerifyClientCertIfGiven
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
		// libprocess verifies servers only with VERIFY_CERT; peers are
		// addressed by IP, so certificates are checked against the CA,
		// not a host name, as libprocess' default "legacy" scheme does.
		InsecureSkipVerify: true,
	}
	if c.VerifyCert || c.RequireCert {
		client.VerifyPeerCertificate = verifyChain(pool)
	}
	return server, client, nil
}

// verifyChain verifies a peer's chain against pool without a host name.
func verifyChain(pool *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer presented no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("parsing peer certificate: %w", err)
			}
			certs[i] = c
		}
		opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := certs[0].Verify(opts)
		return err
	}
}

// wrapInbound turns an accepted socket into the connection the codec reads:
// a TLS server connection whose handshake has completed, or — with
// downgrade support — the plaintext socket when its first byte is not a
// TLS handshake. The sniff and the handshake together must finish within
// TLSHandshakeTimeout of accept (and before shutdown); on any failure the
// caller closes the socket.
func (s *server) wrapInbound(c net.Conn) (net.Conn, error) {
	if s.tlsServer == nil {
		return c, nil
	}
	deadline := time.Now().Add(s.rt.cfg.TLSHandshakeTimeout)
	ctx, cancel := context.WithDeadline(s.baseCtx, deadline)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(deadline)
	select {
	case <-s.closed:
		return nil, errors.New("runtime shutting down")
	default:
	}
	var conn net.Conn = c
	if s.rt.cfg.TLS.SupportDowngrade {
		var first [1]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			return nil, fmt.Errorf("waiting for the first byte: %w", err)
		}
		pc := &peekedConn{Conn: c, first: first[0], has: true}
		if first[0] != tlsHandshakeByte {
			s.rt.log.Debug().Str("peer", c.RemoteAddr().String()).Msg("plaintext connection on the TLS port (downgrade)")
			if !stop() {
				return nil, errors.New("runtime shutting down")
			}
			_ = c.SetDeadline(time.Time{})
			return pc, nil
		}
		conn = pc
	}
	tc := tls.Server(conn, s.tlsServer)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !stop() {
		// The deadline fired as the handshake ended: the socket's
		// deadline may already be in the past.
		return nil, errors.New("handshake deadline passed")
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// peekedConn gives back the byte read to tell TLS from plaintext.
type peekedConn struct {
	net.Conn
	first byte
	has   bool
}

// Read implements net.Conn.
func (p *peekedConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0] = p.first
		p.has = false
		return 1, nil
	}
	return p.Conn.Read(b)
}
