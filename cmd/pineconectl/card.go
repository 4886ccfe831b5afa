package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/pineconed/pineconed/admin"
)

// qrLevel is the QR error correction used for cards: Medium recovers 15 %
// of the code, enough for a creased printout, and keeps a card's code
// small enough for an 80-column terminal.
const qrLevel = qrcode.Medium

// qrPixelsPerModule sizes the PNG: 8 px per module prints sharply and
// scans from a phone screen.
const qrPixelsPerModule = 8

const cardLong = `Print this node's peer card: its public key, the URIs others should dial
(the [peers] advertise URIs, or the listeners with --host in place of their
address), an optional --name, when it was made and when it expires, signed
by the daemon with the node's key. Give the card to another node by any
means (a file, a printout, a message, a QR code); 'pineconectl card import'
there verifies it and peers with this node.`

func (a *app) cardCommand() *cobra.Command {
	var (
		host, name, png string
		valid           time.Duration
		qr              bool
	)
	card := &cobra.Command{
		Use:   "card",
		Short: "Print this node's signed peer card; import, list and remove others' cards",
		Long:  cardLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if valid < 0 || (valid > 0 && valid < time.Second) || valid > admin.MaxCardValiditySeconds*time.Second {
				return fmt.Errorf("--valid %s: want 1s..%dh", valid, admin.MaxCardValiditySeconds/3600)
			}
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				args := admin.CardArgs{Host: host, Name: name, ValidSeconds: int64(valid / time.Second)}
				if a.jsonOut {
					return a.printRaw(ctx, c, admin.ReqGetCard, args)
				}
				r, err := c.Card(ctx, args)
				if err != nil {
					return err
				}
				if png != "" {
					if err := writeCardPNG(png, r.Card); err != nil {
						return err
					}
				}
				if qr {
					return writeCardQR(a.stdout, r.Card)
				}
				_, err = io.WriteString(a.stdout, r.Card)
				return err
			})
		},
	}
	f := card.Flags()
	f.StringVar(&host, "host", "", "host name or address others dial, in place of the listeners' address (not used with [peers] advertise)")
	f.StringVar(&name, "name", "", "human name on the card")
	f.DurationVar(&valid, "valid", 0, "how long the card is valid (default 720h, 30 days)")
	f.BoolVar(&qr, "qr", false, "print the card as a QR code for the terminal")
	f.StringVar(&png, "png", "", "also write the card as a QR code to this PNG file")
	card.AddCommand(a.cardImportCommand(), a.cardListCommand(), a.cardRemoveCommand())
	return card
}

// printRaw sends one request and prints the raw response, for --json.
func (a *app) printRaw(ctx context.Context, c *admin.Client, request string, args any) error {
	raw, err := c.Do(ctx, request, args)
	if err != nil {
		return err
	}
	return a.printJSON(raw)
}

// writeCardQR prints the card's QR code with half-block characters, two
// modules per character cell, dark on light as scanners expect.
func writeCardQR(w io.Writer, text string) error {
	q, err := qrcode.New(text, qrLevel)
	if err != nil {
		return fmt.Errorf("QR code: %w", err)
	}
	_, err = io.WriteString(w, q.ToSmallString(false))
	return err
}

func writeCardPNG(path, text string) error {
	b, err := qrcode.Encode(text, qrLevel, -qrPixelsPerModule)
	if err != nil {
		return fmt.Errorf("QR code: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing the QR code: %w", err)
	}
	return nil
}

// readCardText reads a card from a file or, for "-", standard input,
// refusing more than a card can be.
func (a *app) readCardText(arg string) (string, error) {
	var r io.Reader
	if arg == "-" {
		r = a.stdin
	} else {
		f, err := os.Open(arg)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, admin.MaxCardTextLength+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", arg, err)
	}
	if len(b) > admin.MaxCardTextLength {
		return "", fmt.Errorf("%s: more than %d bytes, too large to be a peer card", arg, admin.MaxCardTextLength)
	}
	return string(b), nil
}

func (a *app) cardImportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE|-",
		Short: "Verify a peer card and peer with its node, pinned to its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := a.readCardText(args[0])
			if err != nil {
				return &cmdError{err}
			}
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				if a.jsonOut {
					return a.printRaw(ctx, c, admin.ReqImportCard, admin.ImportCardArgs{Card: text})
				}
				r, err := c.ImportCard(ctx, text)
				if err != nil {
					return err
				}
				verb := "imported"
				if r.Replaced {
					verb = "replaced"
				}
				_, err = fmt.Fprintf(a.stdout, "%s card of %s, expires %s\npeering with %s\n", verb,
					a.view().named(r.PublicKey, r.Name), r.Expires, strings.Join(r.URIs, ", "))
				return err
			})
		},
	}
}

func (a *app) cardListCommand() *cobra.Command {
	return simple(a, "list", "List the peer cards this node holds", admin.ReqListCards,
		func(w io.Writer, v view, r admin.CardsResponse) error { return writeCards(w, v, r.Cards) })
}

func writeCards(w io.Writer, v view, cards []admin.CardInfo) error {
	tw := newTable(w)
	row(tw, "KEY", "NAME", "EXPIRES", "SOURCE", "URIS")
	for _, c := range cards {
		row(tw, v.key(c.PublicKey), orDash(c.Name), c.Expires, c.Source, strings.Join(c.URIs, " "))
	}
	return tw.Flush()
}

func (a *app) cardRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove KEY|NAME",
		Short: "Forget a peer card and stop peering with its URIs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *admin.Client) error {
				ctx, cancel := a.reqCtx()
				defer cancel()
				if a.jsonOut {
					return a.printRaw(ctx, c, admin.ReqRemoveCard, admin.RemoveCardArgs{Card: args[0]})
				}
				r, err := c.RemoveCard(ctx, args[0])
				if err != nil {
					return err
				}
				if r.Source != admin.CardSourceImport {
					_, err = fmt.Fprintf(a.stdout, "removed card of %s (it comes back at the next reload while %s exists)\n",
						a.view().named(r.PublicKey, r.Name), r.Source)
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "removed card of %s\n", a.view().named(r.PublicKey, r.Name))
				return err
			})
		},
	}
}
