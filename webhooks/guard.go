package webhooks

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Guard keeps webhook requests off addresses a merchant must not reach
// through Fineline (server-side request forgery): loopback, private,
// link-local (the cloud metadata service at 169.254.169.254 among them),
// shared, multicast and reserved ranges. A URL is checked when it is
// registered and again on every connection, on the address actually
// dialled, since DNS may answer differently later.
type Guard struct {
	// AllowLoopback lets receivers on this machine (127.0.0.0/8, ::1) be
	// registered, over plain http too: for local development and tests.
	AllowLoopback bool
	// LookupIP resolves a host; nil uses the system resolver.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// blockedPrefixes are ranges refused beside what netip classifies
// (private, loopback, link-local, multicast, unspecified).
func blockedPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier NAT)
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("64:ff9b::/96"), // NAT64: an IPv4 address behind it
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2002::/16"), // 6to4: an IPv4 address inside
		netip.MustParsePrefix("100::/64"),
	}
}

func refused(format string, args ...any) error {
	return apperr.New(apperr.Invalid, format, args...).WithDetail("url_not_allowed")
}

// allowed reports whether a request may go to ip; plain says it is
// plain http, which only a loopback receiver under AllowLoopback may take.
func (g *Guard) allowed(ip netip.Addr, plain bool) error {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		if g.AllowLoopback {
			return nil
		}
		return refused("%s is a loopback address", ip)
	}
	if plain {
		return refused("http is allowed only for loopback receivers in development; use https")
	}
	switch {
	case ip.IsPrivate():
		return refused("%s is a private address", ip)
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return refused("%s is a link-local address (such as a cloud metadata service)", ip)
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return refused("%s is a multicast address", ip)
	case ip.IsUnspecified():
		return refused("%s is not a routable address", ip)
	}
	for _, p := range blockedPrefixes() {
		if p.Contains(ip) {
			return refused("%s is in a reserved range (%s)", ip, p)
		}
	}
	return nil
}

func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{ip}, nil
	}
	if g.LookupIP != nil {
		return g.LookupIP(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// CheckURL parses a receiver's URL and checks where it leads now: https
// (or http to loopback under AllowLoopback), no credentials, no fragment,
// and every address its host resolves to allowed.
func (g *Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, invalid("url must be an absolute https URL")
	}
	plain := false
	switch u.Scheme {
	case "https":
	case "http":
		if !g.AllowLoopback {
			return nil, refused("url must use https")
		}
		plain = true
	default:
		return nil, invalid("url must be an absolute https URL")
	}
	if u.User != nil {
		return nil, invalid("url must not carry a user name or password")
	}
	if u.Fragment != "" {
		return nil, invalid("url must not have a fragment")
	}
	host := u.Hostname()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.lookup(ctx, host)
	if err != nil || len(ips) == 0 {
		return nil, invalid("the host %q does not resolve", host)
	}
	for _, ip := range ips {
		if err := g.allowed(ip, plain); err != nil {
			return nil, err
		}
	}
	return u, nil
}

type plainKey struct{}

// dial resolves the host, checks every address and connects to a checked
// one, so that what is dialled is what was checked.
func (g *Guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	plain, _ := ctx.Value(plainKey{}).(bool)
	d := net.Dialer{Timeout: 5 * time.Second}
	var last error = fmt.Errorf("%s has no address", host)
	for _, ip := range ips {
		if err := g.allowed(ip, plain); err != nil {
			return nil, err
		}
	}
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// Client returns the HTTP client webhooks are sent with: every connection
// through the guard, no proxy, redirects not followed (a 3xx is a failed
// attempt), timeout per attempt.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         g.dial,
			ForceAttemptHTTP2:   true,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// withScheme marks a request's context with whether it is plain http, for
// the connection check.
func withScheme(ctx context.Context, u *url.URL) context.Context {
	return context.WithValue(ctx, plainKey{}, u.Scheme == "http")
}
