package receipts

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize is the longest receipt token Sign produces and Verify accepts.
const MaxTokenSize = 16 << 10

// claims is the token's payload: the registered claims next to the Kantara
// fields at the top level.
type claims struct {
	jwt.RegisteredClaims
	Receipt
}

// Validate is called by the JWT parser after the signature and the
// registered claims check out; it shadows Receipt.Validate and adds the ties
// between the registered claims and the receipt.
func (c *claims) Validate() error {
	if c.IssuedAt == nil {
		return fmt.Errorf("%w: iat", jwt.ErrTokenRequiredClaimMissing)
	}
	if c.Subject != c.PIIPrincipalID {
		return invalid("sub must equal piiPrincipalId")
	}
	if c.ID != c.ConsentReceiptID {
		return invalid("jti must equal consentReceiptID")
	}
	return c.Receipt.Validate()
}

// jwk is one public key of a JWKS, fields in the order they are published.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// jwks is a JSON Web Key Set.
type jwks struct {
	Keys []jwk `json:"keys"`
}

// Signer issues receipts with one Ed25519 key. It is immutable and safe for
// concurrent use.
type Signer struct {
	key    ed25519.PrivateKey
	kid    string
	issuer string
	now    func() time.Time
	public []ed25519.PublicKey // the signing key's first, then previous keys
}

// NewSigner returns a Signer that signs with key as issuer (the center's base
// URL), reading the time from now (time.Now if nil). It panics if key is not
// a whole Ed25519 private key, as from LoadOrCreateKey or ParseSeed.
func NewSigner(key ed25519.PrivateKey, issuer string, now func() time.Time) *Signer {
	if len(key) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("receipts: NewSigner: Ed25519 private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize))
	}
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Signer{key: key, kid: Thumbprint(pub), issuer: issuer, now: now, public: []ed25519.PublicKey{pub}}
}

// WithPreviousKeys returns a copy of s whose JWKS also lists pub, so that
// receipts signed before a key rotation still verify. It panics if a key is
// not 32 bytes long.
func (s *Signer) WithPreviousKeys(pub ...ed25519.PublicKey) *Signer {
	c := *s
	c.public = append([]ed25519.PublicKey(nil), s.public...)
	for _, p := range pub {
		if len(p) != ed25519.PublicKeySize {
			panic(fmt.Sprintf("receipts: WithPreviousKeys: Ed25519 public key of %d bytes, want %d", len(p), ed25519.PublicKeySize))
		}
		dup := false
		for _, q := range c.public {
			dup = dup || q.Equal(p)
		}
		if !dup {
			c.public = append(c.public, p)
		}
	}
	return &c
}

// KeyID returns the kid of the receipts s signs: the RFC 7638 thumbprint of
// its public key.
func (s *Signer) KeyID() string { return s.kid }

// Issuer returns the iss of the receipts s signs.
func (s *Signer) Issuer() string { return s.issuer }

// Sign sets r.Version, validates r and returns it as a compact JWT: header
// alg EdDSA, typ JWT and kid; claims iss, sub (piiPrincipalId), iat and jti
// (consentReceiptID) beside the receipt's fields. Validation errors are
// Invalid *apperr.Error values wrapping ErrInvalidReceipt.
func (s *Signer) Sign(r Receipt) (string, error) {
	if s.issuer == "" {
		return "", errors.New("receipts: the signer has no issuer")
	}
	r.Version = Version
	if err := r.Validate(); err != nil {
		return "", err
	}
	if r.SPICat == nil {
		r.SPICat = []string{} // r is a copy; the caller's receipt is untouched
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   s.issuer,
			Subject:  r.PIIPrincipalID,
			IssuedAt: jwt.NewNumericDate(s.now()),
			ID:       r.ConsentReceiptID,
		},
		Receipt: r,
	})
	t.Header["kid"] = s.kid
	token, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("receipts: signing: %w", err)
	}
	if len(token) > MaxTokenSize {
		return "", invalid("the signed receipt is %d bytes, over the %d allowed", len(token), MaxTokenSize)
	}
	return token, nil
}

// JWKS returns the public keys that verify s's receipts as a JSON Web Key
// Set: {"keys":[{"kty":"OKP","crv":"Ed25519","x":...,"kid":...,"alg":"EdDSA","use":"sig"}]},
// the signing key first. Serve it as application/json.
func (s *Signer) JWKS() []byte {
	set := jwks{Keys: make([]jwk, 0, len(s.public))}
	for _, p := range s.public {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(p),
			Kid: Thumbprint(p), Alg: "EdDSA", Use: "sig",
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		// A struct of strings always marshals.
		panic(fmt.Sprintf("receipts: encoding JWKS: %v", err))
	}
	return b
}

// jwsJSON is a flattened JWS JSON serialization (RFC 7515 §7.2.2).
type jwsJSON struct {
	Protected string `json:"protected"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// SignDetached signs payload (a document of media type cty) and returns it
// as a flattened JWS JSON object: {"protected","payload","signature"},
// header alg EdDSA with the receipts' kid, so the same published keys
// check it. The payload is base64url inside the object, exactly the bytes
// signed.
func (s *Signer) SignDetached(payload []byte, cty string) ([]byte, error) {
	header, err := json.Marshal(map[string]string{"alg": "EdDSA", "kid": s.kid, "cty": cty, "iss": s.issuer})
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	protected, body := enc.EncodeToString(header), enc.EncodeToString(payload)
	sig, err := jwt.SigningMethodEdDSA.Sign(protected+"."+body, s.key)
	if err != nil {
		return nil, fmt.Errorf("receipts: signing: %w", err)
	}
	return json.MarshalIndent(jwsJSON{Protected: protected, Payload: body, Signature: enc.EncodeToString(sig)}, "", "  ")
}

// VerifyDetached checks a flattened JWS made by SignDetached against the
// keys of a JWKS and returns its payload.
func VerifyDetached(signed, jwksJSON []byte) ([]byte, error) {
	var j jwsJSON
	if err := json.Unmarshal(signed, &j); err != nil {
		return nil, refused(err)
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(j.Protected)
	if err != nil {
		return nil, refused(err)
	}
	var h struct{ Alg, Kid string }
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, refused(err)
	}
	if h.Alg != "EdDSA" {
		return nil, refused(fmt.Errorf("alg %q, want EdDSA", h.Alg))
	}
	keys, err := parseJWKS(jwksJSON)
	if err != nil {
		return nil, err
	}
	pub, ok := keys[h.Kid]
	if !ok {
		return nil, refused(fmt.Errorf("no published key %q", h.Kid))
	}
	sig, err := enc.DecodeString(j.Signature)
	if err != nil {
		return nil, refused(err)
	}
	if err := jwt.SigningMethodEdDSA.Verify(j.Protected+"."+j.Payload, sig, pub); err != nil {
		return nil, refused(err)
	}
	return enc.DecodeString(j.Payload)
}
