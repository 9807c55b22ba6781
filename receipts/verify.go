package receipts

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/golang-jwt/jwt/v5"
)

// Errors Verify returns, always wrapped; test for them with errors.Is.
var (
	// ErrInvalidToken marks every refusal of a token by Verify; the cause is
	// wrapped beside it (a jwt.Err... value, ErrInvalidReceipt, or one of
	// those below).
	ErrInvalidToken = errors.New("receipts: invalid receipt token")
	// ErrTokenTooLarge is a token over MaxTokenSize.
	ErrTokenTooLarge = errors.New("receipts: token too large")
	// ErrNoKeyID is a token whose header names no kid.
	ErrNoKeyID = errors.New("receipts: token has no kid")
	// ErrUnknownKeyID is a token whose kid is not in the key set.
	ErrUnknownKeyID = errors.New("receipts: token kid is not in the key set")
	// ErrInvalidJWKS is a key set that cannot be used; a configuration
	// problem, not the token's fault.
	ErrInvalidJWKS = errors.New("receipts: invalid JWKS")
)

// Leeway is the clock skew Verify tolerates between issuer and verifier.
const Leeway = time.Minute

// Verify checks token against the Ed25519 keys in the JWKS jwksJSON and
// returns its receipt. It selects the key by the token's kid, accepts only
// alg EdDSA, requires iss to equal issuer and iat not in the future (with
// Leeway), and checks the receipt as Sign does. Receipts do not expire.
//
// A refused token gives an Invalid *apperr.Error wrapping ErrInvalidToken and
// the cause; an unusable JWKS or empty issuer gives an error wrapping
// ErrInvalidJWKS or a plain error (an internal error for apperr).
func Verify(token string, jwksJSON []byte, issuer string) (Receipt, error) {
	if issuer == "" {
		// jwt.WithIssuer("") would skip the check altogether.
		return Receipt{}, errors.New("receipts: Verify needs the expected issuer")
	}
	keys, err := parseJWKS(jwksJSON)
	if err != nil {
		return Receipt{}, err
	}
	if len(token) > MaxTokenSize {
		return Receipt{}, refused(fmt.Errorf("%w: %d bytes, at most %d", ErrTokenTooLarge, len(token), MaxTokenSize))
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
	)
	var c claims
	_, err = p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("%w: alg %v", jwt.ErrTokenSignatureInvalid, t.Header["alg"])
		}
		kid, ok := t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, ErrNoKeyID
		}
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownKeyID, kid)
		}
		return k, nil
	})
	if err != nil {
		return Receipt{}, refused(err)
	}
	return c.Receipt, nil
}

// refused wraps why a token was refused as an Invalid application error.
func refused(cause error) error {
	return &apperr.Error{
		Code:    apperr.Invalid,
		Message: "the receipt is not a valid signed receipt from this issuer",
		Detail:  "invalid_receipt",
		Err:     fmt.Errorf("%w: %w", ErrInvalidToken, cause),
	}
}

// parseJWKS returns the set's Ed25519 signature keys by kid (by RFC 7638
// thumbprint for a key without one). Keys of other types or uses are skipped.
func parseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var set jwks
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWKS, err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for i, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: keys[%d].x is not a base64url Ed25519 public key", ErrInvalidJWKS, i)
		}
		pub := ed25519.PublicKey(x)
		kid := k.Kid
		if kid == "" {
			kid = Thumbprint(pub)
		}
		if prev, dup := keys[kid]; dup && !prev.Equal(pub) {
			return nil, fmt.Errorf("%w: kid %q names two keys", ErrInvalidJWKS, kid)
		}
		keys[kid] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no Ed25519 signature key", ErrInvalidJWKS)
	}
	return keys, nil
}
