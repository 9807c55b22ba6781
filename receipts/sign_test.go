package receipts

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

const testIssuer = "https://consent.example.com"

// segment returns the decoded i-th dot-separated part of a compact JWT.
func segment(tb testing.TB, token string, i int) []byte {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// payload returns the claims of a token as a map to edit.
func payload(tb testing.TB, token string) jwt.MapClaims {
	tb.Helper()
	var c jwt.MapClaims
	if err := json.Unmarshal(segment(tb, token, 1), &c); err != nil {
		tb.Fatal(err)
	}
	return c
}

// forge signs claims with any method and key, with exactly the given header
// fields besides alg.
func forge(tb testing.TB, m jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, c)
	delete(t.Header, "typ")
	for k, v := range header {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// pastClock returns a fixed time an hour ago, at whole seconds.
func pastClock() func() time.Time {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	return func() time.Time { return at }
}

func TestSignVerifyRoundTrip(t *testing.T) {
	now := pastClock()
	key := testKey(t)
	s := NewSigner(key, testIssuer, now)
	for _, tt := range []struct {
		name   string
		change func(*Receipt)
	}{
		{"full", func(*Receipt) {}},
		{"minimal", func(r *Receipt) {
			r.Sensitive, r.SPICat, r.Language, r.Fineline = false, nil, "", Extension{}
			r.PIIControllers[0] = PIIController{PIIController: "Shop", Contact: "DPO"}
			r.Services[0].Purposes[0] = Purpose{Purpose: "Newsletter"}
		}},
		{"id from NewID and public key", func(r *Receipt) { r.ConsentReceiptID, r.PublicKey = NewID(), "pk" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := testReceipt()
			tt.change(&in)
			token, err := s.Sign(in)
			if err != nil {
				t.Fatal(err)
			}
			if in.Version != "" {
				t.Error("Sign changed the caller's receipt")
			}
			got, err := Verify(token, s.JWKS(), testIssuer)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := in
			want.Version = Version
			if want.SPICat == nil {
				want.SPICat = []string{} // the token always carries an array
			}
			if want.Services[0].Purposes[0].PurposeCategory == nil {
				want.Services[0].Purposes[0].PurposeCategory = []string{}
				want.Services[0].Purposes[0].PIICategory = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("receipt after round trip (-want +got):\n%s", diff)
			}

			var header map[string]any
			if err := json.Unmarshal(segment(t, token, 0), &header); err != nil {
				t.Fatal(err)
			}
			wantHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": rfc7638(t, key.Public().(ed25519.PublicKey))}
			if diff := cmp.Diff(wantHeader, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			c := payload(t, token)
			wantReg := map[string]any{"iss": testIssuer, "sub": in.PIIPrincipalID, "jti": in.ConsentReceiptID, "iat": float64(now().Unix())}
			for k, v := range wantReg {
				if c[k] != v {
					t.Errorf("claim %s = %v, want %v", k, c[k], v)
				}
			}
			for _, k := range []string{"exp", "nbf", "aud"} {
				if _, ok := c[k]; ok {
					t.Errorf("unexpected claim %s", k)
				}
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	key := testKey(t)
	old := testKey(t).Public().(ed25519.PublicKey)
	s := NewSigner(key, testIssuer, nil).WithPreviousKeys(old, key.Public().(ed25519.PublicKey))
	raw := s.JWKS()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || len(top) != 1 {
		t.Errorf("JWKS has members %v, want only keys", top)
	}
	pubs := []ed25519.PublicKey{key.Public().(ed25519.PublicKey), old}
	if len(set.Keys) != len(pubs) {
		t.Fatalf("JWKS has %d keys, want %d (current first, previous after, no duplicate): %s", len(set.Keys), len(pubs), raw)
	}
	for i, pub := range pubs {
		k := set.Keys[i]
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil {
			t.Fatalf("keys[%d].x: %v", i, err)
		}
		if !pub.Equal(ed25519.PublicKey(x)) {
			t.Errorf("keys[%d].x does not decode to the public key", i)
		}
		want := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": k["x"], "kid": rfc7638(t, pub), "alg": "EdDSA", "use": "sig"}
		if diff := cmp.Diff(want, k); diff != "" {
			t.Errorf("keys[%d] (-want +got):\n%s", i, diff)
		}
	}
	if s.KeyID() != set.Keys[0]["kid"] {
		t.Errorf("KeyID() = %s, JWKS says %s", s.KeyID(), set.Keys[0]["kid"])
	}
	if !strings.HasPrefix(string(raw), `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`) {
		t.Errorf("JWKS member order: %s", raw)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	oldSigner := NewSigner(oldKey, testIssuer, pastClock())
	newSigner := NewSigner(newKey, testIssuer, pastClock()).WithPreviousKeys(oldKey.Public().(ed25519.PublicKey))
	oldToken, err := oldSigner.Sign(testReceipt())
	if err != nil {
		t.Fatal(err)
	}
	newToken, err := newSigner.Sign(testReceipt())
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := Verify(tok, newSigner.JWKS(), testIssuer); err != nil {
			t.Errorf("%s token against the rotated JWKS: %v", name, err)
		}
	}
	if _, err := Verify(newToken, oldSigner.JWKS(), testIssuer); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("new token against the old JWKS: %v, want ErrUnknownKeyID", err)
	}
	base := NewSigner(newKey, testIssuer, nil)
	rotated := base.WithPreviousKeys(oldKey.Public().(ed25519.PublicKey))
	if len(base.public) != 1 || len(rotated.public) != 2 {
		t.Errorf("WithPreviousKeys: %d keys before, %d after; want it to copy, not change, the signer", len(base.public), len(rotated.public))
	}
}

func TestVerifyRefuses(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	s := NewSigner(key, testIssuer, pastClock())
	jwks := s.JWKS()
	good, err := s.Sign(testReceipt())
	if err != nil {
		t.Fatal(err)
	}
	kid := map[string]any{"kid": s.KeyID(), "typ": "JWT"}
	edit := func(change func(c jwt.MapClaims)) jwt.MapClaims {
		c := payload(t, good)
		change(c)
		return c
	}
	parts := strings.Split(good, ".")
	tampered := edit(func(c jwt.MapClaims) { c["piiPrincipalId"], c["sub"] = "someone-else", "someone-else" })
	tamperedJSON, err := json.Marshal(tampered)
	if err != nil {
		t.Fatal(err)
	}
	sig := segment(t, good, 2)
	sig[0] ^= 1
	big := edit(func(c jwt.MapClaims) { c["fineline"] = map[string]any{"merchant": strings.Repeat("m", MaxTokenSize)} })

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"no kid", forge(t, jwt.SigningMethodEdDSA, key, nil, payload(t, good)), ErrNoKeyID},
		{"empty kid", forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": ""}, payload(t, good)), ErrNoKeyID},
		{"kid not a string", forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": 7}, payload(t, good)), ErrNoKeyID},
		{"unknown kid", forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "nope"}, payload(t, good)), ErrUnknownKeyID},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, payload(t, good)), jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with the public key", forge(t, jwt.SigningMethodHS256, []byte(pub), kid, payload(t, good)), jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with x", forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), kid, payload(t, good)), jwt.ErrTokenSignatureInvalid},
		{"HS256 keyed with the JWKS", forge(t, jwt.SigningMethodHS256, jwks, kid, payload(t, good)), jwt.ErrTokenSignatureInvalid},
		{"another key under our kid", forge(t, jwt.SigningMethodEdDSA, testKey(t), kid, payload(t, good)), jwt.ErrTokenSignatureInvalid},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedJSON) + "." + parts[2], jwt.ErrTokenSignatureInvalid},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig), jwt.ErrTokenSignatureInvalid},
		{"signature stripped", parts[0] + "." + parts[1] + ".", jwt.ErrTokenSignatureInvalid},
		{"malformed", "not.a-token", jwt.ErrTokenMalformed},
		{"too large", forge(t, jwt.SigningMethodEdDSA, key, kid, big), ErrTokenTooLarge},
		{"other issuer", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), jwt.ErrTokenInvalidIssuer},
		{"no issuer", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { delete(c, "iss") })), jwt.ErrTokenRequiredClaimMissing},
		{"issued in the future", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })), jwt.ErrTokenUsedBeforeIssued},
		{"no iat", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { delete(c, "iat") })), jwt.ErrTokenRequiredClaimMissing},
		{"sub is not the principal", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["sub"] = "other" })), ErrInvalidReceipt},
		{"jti is not the receipt id", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["jti"] = "other" })), ErrInvalidReceipt},
		{"other version", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["version"] = "KI-CR-v1.0.0" })), ErrInvalidReceipt},
		{"sensitive without spiCat", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["spiCat"] = []string{} })), ErrInvalidReceipt},
		{"no services", forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { delete(c, "services") })), ErrInvalidReceipt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Verify(tt.token, jwks, testIssuer)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify = %v, want it to wrap ErrInvalidToken", err)
			}
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("code %q, want %q", apperr.CodeOf(err), apperr.Invalid)
			}
			if diff := cmp.Diff(Receipt{}, r); diff != "" {
				t.Errorf("Verify returned a receipt with its error:\n%s", diff)
			}
		})
	}

	t.Run("good token, wrong expected issuer", func(t *testing.T) {
		if _, err := Verify(good, jwks, "https://other.example"); !errors.Is(err, jwt.ErrTokenInvalidIssuer) {
			t.Fatalf("Verify = %v, want ErrTokenInvalidIssuer", err)
		}
	})
	t.Run("good token, empty expected issuer", func(t *testing.T) {
		if _, err := Verify(good, jwks, ""); err == nil {
			t.Fatal("Verify with an empty issuer succeeded")
		}
	})
	t.Run("good token, within leeway", func(t *testing.T) {
		soon := forge(t, jwt.SigningMethodEdDSA, key, kid, edit(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(Leeway / 2).Unix() }))
		if _, err := Verify(soon, jwks, testIssuer); err != nil {
			t.Fatalf("Verify = %v, want a clock skew within Leeway accepted", err)
		}
	})
	t.Run("good token accepted", func(t *testing.T) {
		if _, err := Verify(good, jwks, testIssuer); err != nil {
			t.Fatalf("Verify = %v; the refusals above prove nothing if the good token fails too", err)
		}
	})
}

func TestVerifyBadJWKS(t *testing.T) {
	key := testKey(t)
	s := NewSigner(key, testIssuer, pastClock())
	token, err := s.Sign(testReceipt())
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	otherX := base64.RawURLEncoding.EncodeToString(testKey(t).Public().(ed25519.PublicKey))
	for _, tt := range []struct{ name, jwks string }{
		{"not JSON", "nope"},
		{"no keys", `{"keys":[]}`},
		{"only RSA", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"` + s.KeyID() + `"}]}`},
		{"encryption key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","use":"enc"}]}`},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`},
		{"x not base64url", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + strings.Repeat("+", 43) + `"}]}`},
		{"kid for two keys", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"k"},{"kty":"OKP","crv":"Ed25519","x":"` + otherX + `","kid":"k"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Verify(token, []byte(tt.jwks), testIssuer); !errors.Is(err, ErrInvalidJWKS) {
				t.Fatalf("Verify = %v, want ErrInvalidJWKS", err)
			}
		})
	}
	t.Run("key without kid is found by thumbprint", func(t *testing.T) {
		if _, err := Verify(token, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+x+`"}]}`), testIssuer); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	})
}

func TestSignerConcurrentUse(t *testing.T) {
	s := NewSigner(testKey(t), testIssuer, pastClock())
	jwks := s.JWKS()
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			r := testReceipt()
			r.ConsentReceiptID = NewID()
			token, err := s.Sign(r)
			if err == nil {
				_, err = Verify(token, jwks, testIssuer)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}

func TestNewSignerPanicsOnBadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewSigner accepted a 3-byte key")
		}
	}()
	NewSigner(ed25519.PrivateKey{1, 2, 3}, testIssuer, nil)
}
