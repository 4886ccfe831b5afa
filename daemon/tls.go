package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/pineconed/pineconed/config"
)

// peersTLS builds the TLS configuration of overlay/peers from [peers.tls]:
// the certificate served by wss:// listeners and the roots trusted when
// dialling wss:// peers (the system roots plus ca_file). It returns nil when
// the table is empty, which means system roots and no wss listener.
func peersTLS(c config.TLSConfig) (*tls.Config, error) {
	if c.CertFile == "" && c.KeyFile == "" && c.CAFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("peers.tls: certificate %s, key %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("peers.tls: ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("peers.tls: ca_file %s: %w", c.CAFile, errors.New("no PEM certificate in it"))
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
