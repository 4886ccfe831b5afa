package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/admintest"
	"github.com/pineconed/pineconed/peercard"
	"github.com/pineconed/pineconed/peercard/peercardtest"
)

// decodeQR reads a QR code from an image with ZXing's decoder (a reader
// independent of the encoder we print with).
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decoding the QR code: %v", err)
	}
	return res.GetText()
}

func TestCardPrint(t *testing.T) {
	sock, _ := startFake(t)
	out := mustRun(t, sock, "card", "--host", "fd00::7", "--name", "node-a")
	if !strings.HasPrefix(out, peercard.Header+" v1\n") {
		t.Fatalf("card output:\n%s", out)
	}
	c, err := peercard.Verify([]byte(out), admintest.CardNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "node-a" || len(c.URIs) != 1 || c.URIs[0] != "tcp://[fd00::7]:65432" {
		t.Fatalf("card %+v", c)
	}
	if want := admintest.CardNow.Add(30 * 24 * 3600e9); !c.Expires.Equal(want) {
		t.Errorf("default expiry %s, want %s", c.Expires, want)
	}
	short := mustRun(t, sock, "card", "--valid", "1h")
	if c, _ := peercard.Parse([]byte(short)); c.Expires.Sub(c.Created).Hours() != 1 {
		t.Errorf("--valid 1h: %s..%s", c.Created, c.Expires)
	}
	var r admin.CardResponse
	if err := json.Unmarshal([]byte(mustRun(t, sock, "card", "--json", "--name", "node-a")), &r); err != nil || r.Name != "node-a" ||
		!strings.HasPrefix(r.Card, peercard.Header) {
		t.Errorf("card --json: %+v, %v", r, err)
	}
	if code, _, errOut := cli(t, sock, "card", "--valid", "-1s"); code != exitUsage || !strings.Contains(errOut, "--valid") {
		t.Errorf("negative validity: exit %d %q", code, errOut)
	}
}

// TestCardPNG writes the card as a PNG QR code and reads it back with a QR
// decoder: the text must be the very card, and verify.
func TestCardPNG(t *testing.T) {
	sock, _ := startFake(t)
	path := filepath.Join(t.TempDir(), "card.png")
	text := mustRun(t, sock, "card", "--host", "relay.example.org", "--png", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeQR(t, img)
	if got != text {
		t.Fatalf("QR code holds\n%s\nwant\n%s", got, text)
	}
	if _, err := peercard.Verify([]byte(got), admintest.CardNow); err != nil {
		t.Fatal(err)
	}
}

// TestCardTerminalQR turns the --qr output back into an image, two modules
// per character cell, and decodes it.
func TestCardTerminalQR(t *testing.T) {
	sock, _ := startFake(t)
	text := mustRun(t, sock, "card", "--name", "node-a")
	out := mustRun(t, sock, "card", "--name", "node-a", "--qr")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	width := len([]rune(lines[0]))
	if width > 100 {
		t.Errorf("QR code is %d columns wide", width)
	}
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, (width+8)*scale, (2*len(lines)+8)*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	dark := func(x, y int) {
		for dy := range scale {
			for dx := range scale {
				img.SetGray((x+4)*scale+dx, (y+4)*scale+dy, color.Gray{})
			}
		}
	}
	for row, l := range lines {
		for col, r := range []rune(l) {
			// ToSmallString(false) draws light modules with the glyph
			// and leaves dark ones blank, for light-on-dark terminals.
			top, bottom := r != '█' && r != '▀', r != '█' && r != '▄'
			if top {
				dark(col, 2*row)
			}
			if bottom {
				dark(col, 2*row+1)
			}
		}
	}
	if got := decodeQR(t, img); got != text {
		t.Fatalf("terminal QR code holds\n%s\nwant\n%s", got, text)
	}
}

func TestCardImportListRemove(t *testing.T) {
	sock, fb := startFake(t)
	text := mustRun(t, sock, "card", "--name", "node-a")
	path := filepath.Join(t.TempDir(), "a.card")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, sock, "card", "import", path)
	if !strings.HasPrefix(out, "imported card of ") || !strings.Contains(out, `"node-a"`) || !strings.Contains(out, "peering with tcp://[fd00::1]:65432") {
		t.Errorf("import: %q", out)
	}
	stdin = strings.NewReader(text)
	t.Cleanup(func() { stdin = os.Stdin })
	if out := mustRun(t, sock, "card", "import", "-"); !strings.HasPrefix(out, "replaced card of ") {
		t.Errorf("import from stdin: %q", out)
	}
	rows := table(t, mustRun(t, sock, "card", "list"), "KEY", "NAME", "EXPIRES", "SOURCE", "URIS")
	if len(rows) != 1 || rows[0][1] != "node-a" || rows[0][3] != "import" || rows[0][4] != "tcp://[fd00::1]:65432" {
		t.Errorf("list: %q", rows)
	}

	if err := os.WriteFile(path, []byte(peercardtest.Tamper(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, sock, "card", "import", path); code != exitAPI || !strings.Contains(errOut, "checksum") {
		t.Errorf("tampered card: exit %d %q", code, errOut)
	}
	if code, _, errOut := cli(t, sock, "card", "import", filepath.Join(t.TempDir(), "none.card")); code != exitAPI || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d %q", code, errOut)
	}

	if out := mustRun(t, sock, "card", "remove", "node-a"); !strings.HasPrefix(out, "removed card of ") {
		t.Errorf("remove: %q", out)
	}
	if cards, _ := fb.Cards(t.Context()); len(cards) != 0 {
		t.Errorf("cards after remove: %+v", cards)
	}
	if code, _, errOut := cli(t, sock, "card", "remove", "node-a"); code != exitAPI || !strings.Contains(errOut, "no peer card") {
		t.Errorf("remove again: exit %d %q", code, errOut)
	}
}
