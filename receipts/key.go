package receipts

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxKeyFile bounds what LoadOrCreateKey reads; a PKCS#8 Ed25519 PEM is
// about 120 bytes.
const maxKeyFile = 16 << 10

// LoadOrCreateKey returns the Ed25519 key stored at path as a PEM "PRIVATE
// KEY" block (PKCS#8). If there is no file, it generates a key and writes it
// with mode 0600; the directory must exist. It refuses a key file that group
// or other may read or write. Two processes starting at once end up with
// the same key: the file is published atomically and never overwritten.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return loadKey(path)
}

func loadKey(path string) (key ed25519.PrivateKey, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("receipts: opening signing key: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			key, err = nil, fmt.Errorf("receipts: closing signing key %s: %w", path, cerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("receipts: signing key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("receipts: signing key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("receipts: signing key %s has mode %#o, open to group or other; run chmod 600 on it", path, perm)
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("receipts: signing key %s is too large to be an Ed25519 key", path)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("receipts: reading signing key %s: %w", path, err)
	}
	key, err = parsePEM(b)
	if err != nil {
		return nil, fmt.Errorf("receipts: signing key %s: %w", path, err)
	}
	return key, nil
}

func parsePEM(b []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`want one PEM block of type "PRIVATE KEY"`)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#8: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("want an Ed25519 key, found %T", k)
	}
	return key, nil
}

// createKey writes a new key to a temporary file and links it into place,
// so that no reader sees a partial file and an existing key is never replaced.
func createKey(path string) (err error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("receipts: generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("receipts: encoding signing key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".receipt-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("receipts: creating signing key: %w", err)
	}
	defer func() {
		// The link below keeps the data under path; the temporary name goes.
		if rerr := os.Remove(tmp.Name()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("receipts: removing temporary key file: %w", rerr))
		}
	}()
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return errors.Join(fmt.Errorf("receipts: writing signing key: %w", err), tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(fmt.Errorf("receipts: writing signing key: %w", err), tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("receipts: writing signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("receipts: creating signing key: %w", err)
	}
	return nil
}

// ParseSeed returns the Ed25519 key whose 32-byte seed is b64, in standard
// or URL-safe base64, padded or not. Surrounding white space is ignored.
func ParseSeed(b64 string) (ed25519.PrivateKey, error) {
	s := strings.TrimSpace(b64)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		seed, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("receipts: signing key seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	// The value is secret: never echo it.
	return nil, errors.New("receipts: signing key seed is not valid base64")
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key:
// base64url (no padding) of the SHA-256 of {"crv":"Ed25519","kty":"OKP","x":...}.
// It is the key id (kid) of receipts signed with the matching private key.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
