package handlers

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument describes every route of the merchant and operator API.
// A test validates it and checks that every registered route is in it.
//
//go:embed openapi.json
var openAPIDocument []byte

func (a *API) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
