package receipts

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The Ed25519 key of RFC 8037, appendix A.1, and its RFC 7638 thumbprint
// (appendix A.3).
const (
	rfc8037D          = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X          = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
)

// testKey returns a fresh Ed25519 key.
func testKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// rfc7638 computes a JWK thumbprint the way RFC 7638 describes it, from a
// JSON object of the required members that encoding/json writes with sorted
// keys and no white space.
func rfc7638(tb testing.TB, pub ed25519.PublicKey) string {
	tb.Helper()
	canon, err := json.Marshal(map[string]string{"kty": "OKP", "x": base64.RawURLEncoding.EncodeToString(pub), "crv": "Ed25519"})
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestThumbprintRFC8037(t *testing.T) {
	key, err := ParseSeed(rfc8037D)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if x := base64.RawURLEncoding.EncodeToString(pub); x != rfc8037X {
		t.Fatalf("public key x = %s, want %s", x, rfc8037X)
	}
	if got := Thumbprint(pub); got != rfc8037Thumbprint {
		t.Errorf("Thumbprint = %s, want %s", got, rfc8037Thumbprint)
	}
	if got := rfc7638(t, pub); got != rfc8037Thumbprint {
		t.Errorf("test's own RFC 7638 computation = %s, want %s", got, rfc8037Thumbprint)
	}
	k2 := testKey(t).Public().(ed25519.PublicKey)
	if got, want := Thumbprint(k2), rfc7638(t, k2); got != want {
		t.Errorf("Thumbprint = %s, RFC 7638 gives %s", got, want)
	}
}

func TestParseSeed(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = 0xfb // encodes to '+' and '/' in standard base64, '-' and '_' in URL-safe
	}
	want := ed25519.NewKeyFromSeed(seed)
	for _, tt := range []struct{ name, in string }{
		{"std", base64.StdEncoding.EncodeToString(seed)},
		{"raw std", base64.RawStdEncoding.EncodeToString(seed)},
		{"url", base64.URLEncoding.EncodeToString(seed)},
		{"raw url", base64.RawURLEncoding.EncodeToString(seed)},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(seed) + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSeed(tt.in)
			if err != nil {
				t.Fatalf("ParseSeed(%q): %v", tt.in, err)
			}
			if !got.Equal(want) {
				t.Errorf("ParseSeed(%q) gave another key", tt.in)
			}
		})
	}
	for _, tt := range []struct{ name, in, msg string }{
		{"empty", "", "seed is 0 bytes"},
		{"short", base64.StdEncoding.EncodeToString(seed[:16]), "seed is 16 bytes"},
		{"whole private key", base64.StdEncoding.EncodeToString(want), "seed is 64 bytes"},
		{"not base64", "secret!value*that#is$not", "not valid base64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSeed(tt.in)
			if err == nil || k != nil {
				t.Fatalf("ParseSeed(%q) = %v, %v; want an error", tt.in, k, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to say %q", err, tt.msg)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestLoadOrCreateKeyCreatesAndReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "receipts.pem")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != ed25519.PrivateKeySize {
		t.Fatalf("key of %d bytes", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(b); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PEM PRIVATE KEY:\n%s", b)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("reloading gave another key")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the key", len(entries))
	}
}

func TestLoadOrCreateKeyReadsExistingKey(t *testing.T) {
	want, err := ParseSeed(rfc8037D)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(want)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Error("LoadOrCreateKey did not return the key in the file")
	}
}

func TestLoadOrCreateKeyConcurrentStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	keys := make([]ed25519.PrivateKey, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKey #%d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("LoadOrCreateKey #%d returned another key than #0", i)
		}
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKCS8PrivateKey(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})
	tests := []struct {
		name    string
		content []byte
		mode    fs.FileMode
		msg     string
	}{
		{"world readable", good, 0o644, "chmod 600"},
		{"group readable", good, 0o640, "chmod 600"},
		{"group writable", good, 0o620, "chmod 600"},
		{"empty", nil, 0o600, "PRIVATE KEY"},
		{"not PEM", []byte("hello"), 0o600, "PRIVATE KEY"},
		{"other PEM type", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), 0o600, "PRIVATE KEY"},
		{"not Ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600, "want an Ed25519 key"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "PKCS#8"},
		{"trailing data", append(append([]byte{}, good...), "more"...), 0o600, "after the PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // WriteFile's mode is subject to umask
				t.Fatal(err)
			}
			k, err := LoadOrCreateKey(path)
			if err == nil || k != nil {
				t.Fatalf("LoadOrCreateKey = %d-byte key, %v; want an error", len(k), err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to mention %q", err, tt.msg)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(tt.content) {
				t.Error("the refused file was changed")
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		_, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "nope", "key.pem"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LoadOrCreateKey = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(dir)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadOrCreateKey(dir) = %v, want a not-a-regular-file error", err)
		}
	})
}
