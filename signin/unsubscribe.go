package signin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/fineline/fineline/apperr"
)

// Unsubscribe names the one purpose a one-click unsubscribe link withdraws.
type Unsubscribe struct {
	MerchantID string
	SubjectID  string
	Purpose    string
}

// unsubscribeMAC signs a payload with a key of its own, derived from the
// service key, so an unsubscribe token is never a session or a link.
func (s *Service) unsubscribeMAC(payload string) []byte {
	k := hmac.New(sha256.New, s.Key)
	k.Write([]byte("fineline unsubscribe v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// UnsubscribeToken signs u into a token for a List-Unsubscribe URL (RFC
// 8058). It does not expire: an email may be opened years later.
func (s *Service) UnsubscribeToken(u Unsubscribe) string {
	payload := u.MerchantID + "|" + u.SubjectID + "|" + u.Purpose
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(s.unsubscribeMAC(payload))
}

// ParseUnsubscribe checks a token's signature and returns what it names.
func (s *Service) ParseUnsubscribe(token string) (Unsubscribe, error) {
	bad := apperr.New(apperr.Invalid, "this unsubscribe link is not valid").WithDetail("link_invalid")
	if len(token) > 600 {
		return Unsubscribe{}, bad
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return Unsubscribe{}, bad
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return Unsubscribe{}, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(m64)
	if err != nil || !hmac.Equal(mac, s.unsubscribeMAC(string(payload))) {
		return Unsubscribe{}, bad
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Unsubscribe{}, bad
	}
	return Unsubscribe{MerchantID: parts[0], SubjectID: parts[1], Purpose: parts[2]}, nil
}
