package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/config"
)

// preflight checks everything the configuration decides that can be
// checked without changing the system, before New creates the TUN or any
// socket that stays: the key file (when it exists) is usable, the TLS files
// load, the admin group exists, every peering listener and the metrics
// address can be bound (each is bound and closed again). Problems come back
// as config.Errors naming file and option, which the daemon's command turns
// into exit status 2: a restart cannot fix them. It returns the loaded TLS
// configuration so that New does not read the files twice.
func preflight(cfg config.Config, file string) (*tls.Config, error) {
	var errs config.Errors
	fail := func(key string, err error) {
		errs = append(errs, &config.Error{File: file, Key: key, Msg: err.Error(), Err: err})
	}
	if _, err := config.LoadKey(cfg.PrivateKeyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fail("private_key_file", err)
	}
	tc, err := peersTLS(cfg.Peers.TLS)
	if err != nil {
		fail("peers.tls", err)
	}
	if cfg.Admin.Socket != "" {
		if _, err := admin.ResolveGroup(cfg.Admin.Group); err != nil {
			fail("admin.group", fmt.Errorf("%w (create the group, or set admin.group = \"\" to keep the daemon's own)", err))
		}
	}
	for i, u := range cfg.Peers.Listen {
		if err := canBind(u.Host); err != nil {
			fail(fmt.Sprintf("peers.listen[%d]", i), fmt.Errorf("%s: %w", u, err))
		}
	}
	if cfg.Metrics.Listen != "" {
		if err := canBind(cfg.Metrics.Listen); err != nil {
			fail("metrics.listen", err)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return tc, nil
}

// canBind binds a TCP listener on addr and closes it at once. A port taken
// in between is still caught when the real listener opens; this catches
// what is wrong for good (an address not on this host, a port in use by
// another service, a privileged port) before anything is changed.
func canBind(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}
