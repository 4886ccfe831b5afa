package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/peercard"
)

// Imported peer cards. A card is turned into static peers pinned to its
// key; the cards imported over the admin socket are kept in a file of the
// daemon's own next to the private key (the operator's TOML is never
// rewritten), and the cards found in [peers] card_dirs are read again at
// every reload instead.

// cardsFileName is the state file, in the private key's directory.
const cardsFileName = "cards.json"

// maxCardsPerDir bounds the *.card files read from one directory, and
// maxCards the cards held in all, so that a directory full of files cannot
// make the daemon dial without end.
const (
	maxCardsPerDir = 256
	maxCards       = 1024
)

// heldCard is one imported card and the static peers it started.
type heldCard struct {
	card peercard.Card
	text string
	// file is the *.card file it came from, "" when it was imported over
	// the admin socket (and so persisted).
	file string
	// uris are the pinned URIs the card stands for; owned those the card
	// added to the peer manager (a URI already configured as a static
	// peer stays the configuration's).
	uris  []peeruri.URI
	owned []peeruri.URI
}

// cardStore holds the imported cards by key.
type cardStore struct {
	mu     sync.Mutex
	path   string // state file
	byKey  map[wire.PublicKey]*heldCard
	failed map[string]string // card_dirs file → the reason it was last refused, to log a refusal once
}

// cardFile is the JSON of the state file: the texts of the cards, which
// are verified again on every start.
type cardFile struct {
	Cards []string `json:"cards"`
}

func newCardStore(keyFile string) *cardStore {
	return &cardStore{
		path:   filepath.Join(filepath.Dir(keyFile), cardsFileName),
		byKey:  map[wire.PublicKey]*heldCard{},
		failed: map[string]string{},
	}
}

// name returns the name on key's card, "" when there is none.
func (s *cardStore) name(key wire.PublicKey) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.byKey[key]; h != nil {
		return h.card.Name
	}
	return ""
}

// saveLocked writes the imported (not card_dirs) cards atomically.
func (s *cardStore) saveLocked(byKey map[wire.PublicKey]*heldCard) error {
	f := cardFile{Cards: []string{}}
	for _, h := range sortedCards(byKey) {
		if h.file == "" {
			f.Cards = append(f.Cards, h.text)
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving peer cards: %w", err)
	}
	return nil
}

func sortedCards(m map[wire.PublicKey]*heldCard) []*heldCard {
	out := make([]*heldCard, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return wire.PublicKey(out[i].card.Key).Less(out[j].card.Key) })
	return out
}

// pinnedURIs turns a verified card's URIs into static peer URIs pinned to
// its key, with the peer URI syntax and checks.
func pinnedURIs(c peercard.Card) ([]peeruri.URI, error) {
	key := wire.PublicKey(c.Key)
	out := make([]peeruri.URI, 0, len(c.URIs))
	for _, s := range c.URIs {
		u, err := peeruri.ParsePeer(s)
		if err != nil {
			return nil, fmt.Errorf("card URI %q: %w", s, err)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("card URI %q: missing host", s)
		}
		u.Key = key
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// cardInfo is a held card as the admin API shows it.
func cardInfo(h *heldCard, now time.Time) admin.CardInfo {
	src := admin.CardSourceImport
	if h.file != "" {
		src = h.file
	}
	return admin.CardInfo{
		PublicKey:        wire.PublicKey(h.card.Key).String(),
		Name:             h.card.Name,
		URIs:             slices.Clone(h.card.URIs),
		Created:          h.card.Created.Format(time.RFC3339),
		Expires:          h.card.Expires.Format(time.RFC3339),
		ExpiresInSeconds: int64(h.card.Expires.Sub(now).Seconds()),
		Source:           src,
	}
}

// checkCard verifies text as a card for this node to hold.
func (d *Daemon) checkCard(text []byte, now time.Time) (*heldCard, error) {
	c, err := peercard.Verify(text, now)
	if err != nil {
		return nil, err
	}
	if wire.PublicKey(c.Key) == d.key {
		return nil, errors.New("this is this node's own card")
	}
	uris, err := pinnedURIs(c)
	if err != nil {
		return nil, err
	}
	canon, err := c.Encode()
	if err != nil {
		return nil, err
	}
	return &heldCard{card: c, text: canon, uris: uris}, nil
}

// putCardLocked holds h, replacing the card with the same key, and with
// save writes the imported cards when they change. Nothing changes on
// error. replaced reports that a card for the key was held before.
func (d *Daemon) putCardLocked(h *heldCard, save bool) (replaced bool, err error) {
	s := d.cards
	key := wire.PublicKey(h.card.Key)
	old := s.byKey[key]
	if old != nil {
		if h.card.Created.Before(old.card.Created) {
			return false, fmt.Errorf("a newer card for %s is held already (created %s; this one %s)",
				key, old.card.Created.Format(time.RFC3339), h.card.Created.Format(time.RFC3339))
		}
		if old.file == "" && h.file != "" {
			// An imported card stays imported (and persisted) when a
			// directory brings a newer copy of it.
			h.file = ""
		}
	} else if len(s.byKey) >= maxCards {
		return false, fmt.Errorf("%d peer cards are held already", maxCards)
	}
	if save && ((old != nil && old.file == "") || h.file == "") {
		next := make(map[wire.PublicKey]*heldCard, len(s.byKey)+1)
		for k, v := range s.byKey {
			next[k] = v
		}
		next[key] = h
		if err := s.saveLocked(next); err != nil {
			return false, err
		}
	}
	s.byKey[key] = h
	var keep []peeruri.URI
	if old != nil {
		for _, u := range old.owned {
			if slices.Contains(h.uris, u) {
				keep = append(keep, u)
			} else {
				d.removeCardPeer(u)
			}
		}
	}
	h.owned = keep
	for _, u := range h.uris {
		if slices.Contains(keep, u) {
			continue
		}
		if other, ok := d.staticAt(u); ok {
			d.log.Info("peer card: its URI is dialled already by another static peer; not adding it", "peer", key,
				"uri", u, "static", other)
			continue
		}
		switch err := d.peers.Add(u, overlay.OriginCard); {
		case err == nil:
			h.owned = append(h.owned, u)
		case errors.Is(err, peers.ErrExists):
			// Configured as a static peer already: the configuration's.
		default:
			d.log.Warn("peer card: static peer not started", "peer", key, "uri", u, "err", err)
		}
	}
	return old != nil, nil
}

// staticAt returns a running static peer that dials the same endpoint as
// want (pinned or not), if there is one: two static peers to one endpoint
// would make two links to one node.
func (d *Daemon) staticAt(want peeruri.URI) (peeruri.URI, bool) {
	for _, sp := range d.peers.List() {
		if sp.URI.URL() == want.URL() {
			return sp.URI, true
		}
	}
	return peeruri.URI{}, false
}

func (d *Daemon) removeCardPeer(uri peeruri.URI) {
	if err := d.peers.Remove(uri); err != nil && !errors.Is(err, peers.ErrUnknown) && !errors.Is(err, peers.ErrClosed) {
		d.log.Warn("peer card: removing static peer", "uri", uri, "err", err)
	}
}

// dropCardLocked stops key's card's peers and forgets it, with save
// writing the imported cards first when it was one of them.
func (d *Daemon) dropCardLocked(key wire.PublicKey, save bool) error {
	s := d.cards
	h := s.byKey[key]
	if save && h.file == "" {
		next := make(map[wire.PublicKey]*heldCard, len(s.byKey))
		for k, v := range s.byKey {
			if k != key {
				next[k] = v
			}
		}
		if err := s.saveLocked(next); err != nil {
			return err
		}
	}
	delete(s.byKey, key)
	for _, u := range h.owned {
		d.removeCardPeer(u)
	}
	return nil
}

// ImportCard verifies a card and starts peering with it.
func (d *Daemon) ImportCard(text []byte) (admin.CardInfo, bool, error) {
	now := time.Now()
	h, err := d.checkCard(text, now)
	if err != nil {
		return admin.CardInfo{}, false, fmt.Errorf("peer card refused: %w", err)
	}
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	replaced, err := d.putCardLocked(h, true)
	if err != nil {
		return admin.CardInfo{}, false, fmt.Errorf("peer card refused: %w", err)
	}
	d.log.Info("peer card imported", "peer", wire.PublicKey(h.card.Key), "name", h.card.Name,
		"uris", h.uris, "expires", h.card.Expires.Format(time.RFC3339), "replaced", replaced)
	return cardInfo(h, now), replaced, nil
}

// Cards lists the held cards, by key.
func (d *Daemon) Cards() []admin.CardInfo {
	now := time.Now()
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	out := []admin.CardInfo{}
	for _, h := range sortedCards(d.cards.byKey) {
		out = append(out, cardInfo(h, now))
	}
	return out
}

// RemoveCard forgets the card with key id (64 hex) or name id and stops
// its peers. A card from card_dirs comes back at the next reload unless its
// file is removed.
func (d *Daemon) RemoveCard(id string) (admin.CardInfo, error) {
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	var match []*heldCard
	for _, h := range sortedCards(d.cards.byKey) {
		if strings.EqualFold(wire.PublicKey(h.card.Key).String(), id) || (h.card.Name != "" && h.card.Name == id) {
			match = append(match, h)
		}
	}
	switch len(match) {
	case 0:
		return admin.CardInfo{}, fmt.Errorf("no peer card with key or name %q", id)
	case 1:
	default:
		return admin.CardInfo{}, fmt.Errorf("%d peer cards are named %q: give the key", len(match), id)
	}
	h := match[0]
	if err := d.dropCardLocked(h.card.Key, true); err != nil {
		return admin.CardInfo{}, err
	}
	d.log.Info("peer card removed", "peer", wire.PublicKey(h.card.Key), "name", h.card.Name)
	return cardInfo(h, time.Now()), nil
}

// expireCards drops the cards whose expiry has passed: their peers are no
// longer dialled.
func (d *Daemon) expireCards(now time.Time) {
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	for key, h := range d.cards.byKey {
		if now.Before(h.card.Expires) {
			continue
		}
		if err := d.dropCardLocked(key, true); err != nil {
			// Dropped all the same: an expired card must not be dialled,
			// and the copy left in the file is refused at the next start.
			d.log.Warn("peer card expired; the cards file keeps it until the next change", "peer", key, "err", err)
			d.dropCardLocked(key, false)
		}
		d.log.Info("peer card expired; no longer dialling its URIs", "peer", key, "name", h.card.Name,
			"expired", h.card.Expires.Format(time.RFC3339))
	}
}

// loadCards reads the state file at start. A card that no longer verifies
// (expired while the daemon was stopped, or damaged) is logged and left
// out; the file itself is only rewritten by the next change.
func (d *Daemon) loadCards() error {
	b, err := os.ReadFile(d.cards.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("peer cards %s: %w", d.cards.path, err)
	}
	var f cardFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("peer cards %s: %w (refusing to replace it; fix or move the file away)", d.cards.path, err)
	}
	now := time.Now()
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	for i, text := range f.Cards {
		h, err := d.checkCard([]byte(text), now)
		if err == nil {
			// Not saved: the file holds the card already.
			_, err = d.putCardLocked(h, false)
		}
		if err != nil {
			d.log.Warn("peer card in the state file left out", "file", d.cards.path, "index", i, "reason", err)
		}
	}
	d.log.Info("peer cards loaded", "file", d.cards.path, "cards", len(d.cards.byKey), "in_file", len(f.Cards))
	return nil
}

// scanCardDirs imports the *.card files of dirs and drops the cards that
// came from a file no longer there (or from a directory no longer
// configured). It runs at start and on every reload.
func (d *Daemon) scanCardDirs(dirs []string) {
	now := time.Now()
	seen := map[string]bool{}
	d.cards.mu.Lock()
	defer d.cards.mu.Unlock()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.card"))
		if err == nil && len(files) == 0 {
			if _, serr := os.Stat(dir); serr != nil {
				err = serr
			}
		}
		if err != nil {
			d.log.Warn("peer card directory not read", "dir", dir, "err", err)
			continue
		}
		if len(files) > maxCardsPerDir {
			d.log.Warn("peer card directory has too many cards; reading the first ones", "dir", dir,
				"files", len(files), "limit", maxCardsPerDir)
			files = files[:maxCardsPerDir]
		}
		for _, file := range files {
			seen[file] = true
			if err := d.importCardFile(file, now); err != nil {
				if d.cards.failed[file] != err.Error() {
					d.log.Warn("peer card file refused", "file", file, "reason", err)
				}
				d.cards.failed[file] = err.Error()
				continue
			}
			delete(d.cards.failed, file)
		}
	}
	for key, h := range d.cards.byKey {
		if h.file != "" && !seen[h.file] {
			if err := d.dropCardLocked(key, true); err == nil {
				d.log.Info("peer card file gone; card dropped", "file", h.file, "peer", key)
			}
		}
	}
	for file := range d.cards.failed {
		if !seen[file] {
			delete(d.cards.failed, file)
		}
	}
}

func (d *Daemon) importCardFile(file string, now time.Time) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, peercard.MaxTextSize+1))
	if err != nil {
		return err
	}
	h, err := d.checkCard(text, now)
	if err != nil {
		return err
	}
	if old := d.cards.byKey[wire.PublicKey(h.card.Key)]; old != nil && old.text == h.text && (old.file == file || old.file == "") {
		return nil // unchanged since the last scan, or imported already
	}
	h.file = file
	replaced, err := d.putCardLocked(h, true)
	if err != nil {
		return err
	}
	d.log.Info("peer card imported from a file", "file", file, "peer", wire.PublicKey(h.card.Key),
		"name", h.card.Name, "replaced", replaced)
	return nil
}

// Card signs this node's card: the [peers] advertise URIs, or the
// listeners with host in place of their address. A validity of 0 is the
// admin API's default.
func (d *Daemon) Card(host, name string, validity time.Duration) (string, peercard.Card, error) {
	d.reloadMu.Lock()
	advertise := slices.Clone(d.cfg.Peers.Advertise)
	d.reloadMu.Unlock()
	var uris []string
	if len(advertise) > 0 {
		for _, u := range advertise {
			uris = append(uris, u.String())
		}
	} else {
		var err error
		if uris, err = d.listenerCardURIs(host); err != nil {
			return "", peercard.Card{}, err
		}
	}
	if validity <= 0 {
		validity = admin.DefaultCardValiditySeconds * time.Second
	}
	now := time.Now()
	c, err := peercard.Sign(peercard.Card{Name: name, URIs: uris, Created: now, Expires: now.Add(validity)}, d.priv)
	if err != nil {
		return "", peercard.Card{}, err
	}
	text, err := c.Encode()
	return text, c, err
}

// listenerCardURIs are the running listeners as others dial them: host (a
// name or an address) in place of the address they listen on, and the
// bound port for a listener on port 0.
func (d *Daemon) listenerCardURIs(host string) ([]string, error) {
	listen := d.peers.ListenURIs()
	addrs := d.peers.ListenAddrs()
	if len(listen) == 0 {
		return nil, errors.New("no listeners to put on the card: configure [peers] listen or [peers] advertise")
	}
	var out []string
	for i, u := range listen {
		h, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", u, err)
		}
		if i < len(addrs) {
			if ta, ok := addrs[i].(*net.TCPAddr); ok && port == "0" {
				port = strconv.Itoa(ta.Port)
			}
		}
		switch {
		case host != "":
			h = host
		case h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified():
			return nil, fmt.Errorf("listener %s accepts on every address: name the address or host others should dial (pineconectl card --host), or set [peers] advertise", u)
		}
		u.Host = net.JoinHostPort(h, port)
		// host came from the request as text: the URI it makes must parse.
		if _, err := peeruri.ParsePeer(u.String()); err != nil {
			return nil, fmt.Errorf("host %q: %w", host, err)
		}
		out = append(out, u.String())
	}
	return out, nil
}
