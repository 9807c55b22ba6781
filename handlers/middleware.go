package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
)

const ctxRequestID = "fineline.request_id"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// withRequestID takes a well-formed X-Request-Id or makes one, and echoes it.
func withRequestID(c *gin.Context) {
	rid := c.GetHeader("X-Request-Id")
	if !requestIDPattern.MatchString(rid) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, rid)
	c.Header("X-Request-Id", rid)
	c.Next()
}

// logRequests logs one line per request: the route template, never the raw
// path or query string (they can carry subject ids and tokens).
func (a *API) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "(no route)"
	}
	if a.Metrics != nil {
		a.Metrics.Request(route, c.Request.Method, c.Writer.Status(), time.Since(start))
	}
	a.Log.InfoContext(c.Request.Context(), "request",
		"request_id", requestID(c), "method", c.Request.Method, "route", route, "path", loggedPath(c.Request.URL.Path),
		"status", c.Writer.Status(), "latency_ms", float64(time.Since(start).Microseconds())/1000, "bytes", c.Writer.Size())
}

// loggedPath is a request's path as the logs may hold it: never the query
// (it can carry sign-in and unsubscribe tokens), and with every segment
// that could be a secret or an address (long, or holding an @) masked:
// unsubscribe tokens travel in the path, and subject ids may be emails.
func loggedPath(p string) string {
	if len(p) > 512 {
		p = p[:512]
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if len(s) > 40 || strings.Contains(s, "@") || strings.Contains(s, "%40") {
			segs[i] = "…"
		}
	}
	return strings.Join(segs, "/")
}

// securityHeaders sets headers that suit a JSON API: nothing here is ever
// rendered, framed or cached.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// recoverPanics turns a panic into a logged 500 in the error shape.
func (a *API) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			a.writeError(c, apperr.Wrap(fmt.Errorf("panic: %v", r), "panic"))
		}
	}()
	c.Next()
}
