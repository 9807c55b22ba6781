package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
)

// healthz answers while the process serves.
func (a *API) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz answers 200 only while the store is reachable.
func (a *API) readyz(c *gin.Context) error {
	if err := a.Store.Ping(c.Request.Context()); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}

func notFoundRoute(*gin.Context) error {
	return apperr.New(apperr.NotFound, "no such route").WithDetail("not_found")
}

func methodNotAllowed(*gin.Context) error {
	return apperr.New(apperr.NotAllowed, "method not allowed on this route")
}
