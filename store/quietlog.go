package store

import (
	"context"
	"log/slog"
	"strings"
)

// quietHandler passes the embedded server's log records on, except its
// dumps of wire messages. It logs every error answer (a duplicate key, which
// our unique-key writes meet on purpose; an unknown command) with the whole
// request and response, which can hold subject ids and emails.
type quietHandler struct{ next slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, p := range []string{"Response header", "Response message", "Request header", "Request message"} {
		if strings.HasPrefix(r.Message, p) {
			return nil
		}
	}
	return h.next.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.next.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.next.WithGroup(name)}
}
