package vault_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fineline/fineline/vault"
)

func TestMasterKeyFileIsCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "master.key")
	k1, err := vault.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("master key file mode %v, want 0600", info.Mode().Perm())
	}
	k2, err := vault.LoadOrCreate(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load gave another key (err %v)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadOrCreate(path); err == nil {
		t.Fatal("a master key file others may read was accepted")
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadOrCreate(path); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
}

func TestParseKeyAcceptsBase64AndHexOnly32Bytes(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, s := range []string{base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), hex.EncodeToString(raw), " " + base64.StdEncoding.EncodeToString(raw) + "\n"} {
		got, err := vault.ParseKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := vault.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestSealedValuesOpenOnlyWhereTheyBelong(t *testing.T) {
	k, err := vault.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dk, wrapped, err := k.NewDataKey("mer_a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unwrap("mer_a", "bob", wrapped); !errors.Is(err, vault.ErrWrongKey) {
		t.Errorf("alice's data key unwrapped as bob's: %v", err)
	}
	other, _ := vault.New(bytes.Repeat([]byte{2}, 32))
	if _, err := other.Unwrap("mer_a", "alice", wrapped); !errors.Is(err, vault.ErrWrongKey) {
		t.Errorf("another master key unwrapped the data key: %v", err)
	}
	if k.ID() == other.ID() {
		t.Error("two master keys share an id")
	}
	again, err := k.Unwrap("mer_a", "alice", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	sealed := dk.Seal("mer_a", "alice", "birthday", []byte("--07-19"))
	if bytes.Contains(sealed, []byte("07-19")) {
		t.Fatal("the sealed value holds the plain text")
	}
	if got, err := again.Open("mer_a", "alice", "birthday", sealed); err != nil || string(got) != "--07-19" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := again.Open("mer_a", "alice", "shoe_size", sealed); !errors.Is(err, vault.ErrWrongKey) {
		t.Error("a value sealed for one field opened as another")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := again.Open("mer_a", "alice", "birthday", sealed); !errors.Is(err, vault.ErrWrongKey) {
		t.Error("an altered value opened")
	}
	if bytes.Equal(dk.Seal("mer_a", "alice", "birthday", []byte("x")), dk.Seal("mer_a", "alice", "birthday", []byte("x"))) {
		t.Error("two seals of the same value are equal: the nonce is not random")
	}
}

func TestConcurrentFirstStartsAgreeOnOneMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = vault.LoadOrCreate(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("start %d: key %x, err %v; want the one key %x", i, keys[i], errs[i], keys[0])
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("the directory holds %d files, want only master.key", len(entries))
	}
}
