package webhooks_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/webhooks"
)

// TestConnectionsAreCheckedWhereTheyGo: a name that resolved to a public
// address at registration and to loopback later (DNS rebinding) is
// refused when connecting.
func TestConnectionsAreCheckedWhereTheyGo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var mu sync.Mutex
	answer := netip.MustParseAddr("93.184.215.14")
	g := &webhooks.Guard{LookupIP: func(context.Context, string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		return []netip.Addr{answer}, nil
	}}
	u := "https://hooks.shop.example:" + port + "/in"
	if _, err := g.CheckURL(context.Background(), u); err != nil {
		t.Fatalf("a public address refused: %v", err)
	}
	mu.Lock()
	answer = netip.MustParseAddr("127.0.0.1")
	mu.Unlock()
	res, err := g.Client(time.Second).Post(u, "application/json", strings.NewReader("{}"))
	if err == nil {
		res.Body.Close()
		t.Fatal("a connection to loopback went through")
	}
	if !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("refused, but not for its address: %v", err)
	}
}
