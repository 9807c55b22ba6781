package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/fineline/fineline/apperr"
)

// outboxTimeFormat names outbox files so they sort by time: fixed width, UTC.
const outboxTimeFormat = "20060102T150405.000000000Z"

// outbox writes each message as an RFC 5322 .eml file instead of sending it,
// for development and demos. It is safe for concurrent use.
type outbox struct {
	dir     string
	compose composer
	log     *slog.Logger
}

// Send validates m and writes it to a new file in the outbox, named by its
// Date (UTC, to the nanosecond) and a random suffix. The file appears
// complete or not at all: it is written under a temporary name and renamed.
func (o *outbox) Send(ctx context.Context, m Message) error {
	c, err := o.compose.compose(m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return apperr.Wrap(err, "mail: outbox")
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return apperr.Wrap(err, "mail: create outbox")
	}
	name := c.date.UTC().Format(outboxTimeFormat) + "-" + strings.ToLower(rand.Text()[:12]) + ".eml"
	path := filepath.Join(o.dir, name)
	if err := writeNew(path, c); err != nil {
		return apperr.Wrap(err, "mail: write outbox")
	}
	o.log.InfoContext(ctx, "mail written to outbox", "path", path, "message_id", c.messageID)
	return nil
}

// writeNew writes c to path+".tmp" (mode 0600, refusing to overwrite) and
// renames it to path; on failure it removes what it wrote.
func writeNew(path string, c composed) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rmErr := os.Remove(tmp); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
	}()
	if _, err := c.msg.WriteTo(f); err != nil {
		return errors.Join(fmt.Errorf("write message: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
