// Package vault encrypts the data shoppers volunteer. Each subject has its
// own data key; data keys are stored wrapped (AES-256-GCM) by the master key
// from configuration, and every value is sealed with AES-256-GCM under its
// subject's data key, bound by associated data to the merchant, subject and
// field it belongs to, so a sealed value copied elsewhere does not open.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of the master key and of data keys: AES-256.
const KeySize = 32

// ErrWrongKey says a sealed value or data key does not open with this key:
// another master key, or data that was changed.
var ErrWrongKey = errors.New("vault: cannot open: wrong key or altered data")

// Keyring holds the master key.
type Keyring struct {
	master []byte
	wrap   cipher.AEAD
	id     string
}

// New returns a keyring for a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("vault: the master key must be %d bytes, not %d", KeySize, len(master))
	}
	k := &Keyring{master: append([]byte(nil), master...)}
	// The master key itself is only ever an HKDF input: wrapping, the id and
	// every other use get keys of their own.
	aead, err := newAEAD(k.Derive("data key wrapping"))
	if err != nil {
		return nil, err
	}
	k.wrap = aead
	m := hmac.New(sha256.New, k.Derive("master key id"))
	m.Write([]byte("id"))
	k.id = hex.EncodeToString(m.Sum(nil)[:8])
	return k, nil
}

// ID names the master key without revealing it; wrapped data keys carry it,
// so a store opened with another master key says so plainly.
func (k *Keyring) ID() string { return k.id }

// ParseKey reads a master key written as base64 (standard or URL alphabet,
// padded or not) or as 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("vault: the master key must be %d random bytes in base64 or hex (generate one with: openssl rand -base64 32)", KeySize)
}

// LoadOrCreate reads the master key kept in the file at path, creating the
// file (mode 0600) with a new random key if there is none. The file is
// written in full under another name and then linked into place, so no
// reader ever sees it half-written. A file others may read is refused.
func LoadOrCreate(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err == nil {
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("vault: %s may be read by others (mode %v); make it private: chmod 600 %s", path, info.Mode().Perm(), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("vault: read master key: %w", err)
		}
		return ParseKey(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("vault: read master key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create master key: %w", err)
	}
	f, err := os.CreateTemp(dir, ".master.key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("vault: create master key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("vault: write master key: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return LoadOrCreate(path) // another process created it meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("vault: create master key: %w", err)
	}
	return key, nil
}

// Derive returns a 32-byte key for another use of the master key (HKDF-SHA256
// with label as info), so one configured secret serves several purposes
// without reuse.
func (k *Keyring) Derive(label string) []byte {
	out, err := hkdf.Key(sha256.New, k.master, nil, "fineline "+label, KeySize)
	if err != nil {
		panic(err) // only for lengths HKDF cannot give
	}
	return out
}

// DataKey seals and opens one subject's values.
type DataKey struct{ aead cipher.AEAD }

func subjectAD(merchantID, subjectID string) []byte {
	return []byte("fineline data key v1\x00" + merchantID + "\x00" + subjectID)
}

// NewDataKey makes a data key for a subject and returns it with its wrapped
// form, the only form to store.
func (k *Keyring) NewDataKey(merchantID, subjectID string) (DataKey, []byte, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return DataKey{}, nil, err
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return DataKey{}, nil, err
	}
	return DataKey{aead}, seal(k.wrap, raw, subjectAD(merchantID, subjectID)), nil
}

// Unwrap opens a subject's wrapped data key.
func (k *Keyring) Unwrap(merchantID, subjectID string, wrapped []byte) (DataKey, error) {
	raw, err := open(k.wrap, wrapped, subjectAD(merchantID, subjectID))
	if err != nil {
		return DataKey{}, err
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return DataKey{}, err
	}
	return DataKey{aead}, nil
}

func valueAD(merchantID, subjectID, field string) []byte {
	return []byte("fineline value v1\x00" + merchantID + "\x00" + subjectID + "\x00" + field)
}

// Seal encrypts a field's value.
func (d DataKey) Seal(merchantID, subjectID, field string, value []byte) []byte {
	return seal(d.aead, value, valueAD(merchantID, subjectID, field))
}

// Open decrypts a field's value sealed by Seal with the same names.
func (d DataKey) Open(merchantID, subjectID, field string, sealed []byte) ([]byte, error) {
	return open(d.aead, sealed, valueAD(merchantID, subjectID, field))
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns nonce || ciphertext with a random 96-bit nonce.
func seal(aead cipher.AEAD, plain, ad []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return aead.Seal(nonce, nonce, plain, ad)
}

func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrWrongKey
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}

func secretAD(use, name string) []byte {
	return []byte("fineline secret v1\x00" + use + "\x00" + name)
}

// SealSecret encrypts a secret Fineline must read back to use (a webhook
// endpoint's signing secret), bound to its use and name so that a sealed
// secret copied elsewhere does not open.
func (k *Keyring) SealSecret(use, name string, plain []byte) []byte {
	aead, err := newAEAD(k.Derive("secrets"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	return seal(aead, plain, secretAD(use, name))
}

// OpenSecret decrypts a secret sealed by SealSecret with the same use and name.
func (k *Keyring) OpenSecret(use, name string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(k.Derive("secrets"))
	if err != nil {
		return nil, err
	}
	return open(aead, sealed, secretAD(use, name))
}
