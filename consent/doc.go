// Package consent holds Fineline's consent domain: purposes, subjects, the
// append-only ledger of consent events, the state derived from it, and the
// decisions merchants ask for. It is plain Go: it declares the small store
// interfaces it needs and knows nothing of HTTP or of the database driver.
package consent
