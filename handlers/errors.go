package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
)

// errorBody is the one shape of every JSON error.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	// Lines lists, when an import is refused for invalid lines, the first
	// maxListedLines of them.
	Lines []lineProblemJSON `json:"lines,omitempty"`
}

func statusOf(c apperr.Code) int {
	switch c {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.NotAllowed:
		return http.StatusMethodNotAllowed
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.Unprocessable:
		return http.StatusUnprocessableEntity
	case apperr.TooManyRequests:
		return http.StatusTooManyRequests
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// handle adapts a handler that returns an error: the error is written (and
// internal ones logged) in one place, so no handler can write an error and
// carry on.
func (a *API) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			a.writeError(c, err)
		}
	}
}

// writeError renders err as {"error":{"code","message"}} with its status.
func (a *API) writeError(c *gin.Context, err error) {
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code == apperr.Internal || ae.Code == apperr.Unavailable {
		a.Log.ErrorContext(c.Request.Context(), "request failed", "request_id", requestID(c), "route", c.FullPath(), "err", err)
	}
	if ae != nil && ae.Code == apperr.Unavailable && a.Metrics != nil {
		a.Metrics.StoreError()
	}
	code, msg := apperr.Internal, "something went wrong on our side; it has been logged"
	detail := ""
	if ae != nil {
		code = ae.Code
		detail = ae.Detail
		if ae.Code != apperr.Internal {
			msg = ae.Message
		}
	}
	public := string(code)
	if detail != "" {
		public = detail
	}
	if code == apperr.Unavailable {
		// A store that is down or full: the same request may succeed later.
		c.Header("Retry-After", strconv.Itoa(retryAfter))
	}
	c.AbortWithStatusJSON(statusOf(code), errorBody{Error: errorDetail{Code: public, Message: msg, RequestID: requestID(c), Lines: invalidLines(err)}})
}
