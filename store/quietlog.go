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
//
// The server derives a logger with attributes for every connection and
// request; formatting those eagerly (as the text and JSON handlers do) cost
// a fifth of an insert's time. They are kept as given and applied only to a
// record that is actually written.
type quietHandler struct {
	next slog.Handler
	ops  []handlerOp // attributes and groups, in the order given
}

// handlerOp is one WithAttrs (attrs) or WithGroup (group) call.
type handlerOp struct {
	attrs []slog.Attr
	group string
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, p := range []string{"Response header", "Response message", "Request header", "Request message"} {
		if strings.HasPrefix(r.Message, p) {
			return nil
		}
	}
	next := h.next
	for _, op := range h.ops {
		if op.attrs != nil {
			next = next.WithAttrs(op.attrs)
		} else {
			next = next.WithGroup(op.group)
		}
	}
	return next.Handle(ctx, r)
}

func (h quietHandler) with(op handlerOp) quietHandler {
	ops := make([]handlerOp, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return quietHandler{next: h.next, ops: append(ops, op)}
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(handlerOp{attrs: as})
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(handlerOp{group: name})
}
