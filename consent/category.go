package consent

import (
	"slices"
	"strings"

	"github.com/fineline/fineline/apperr"
)

// Data categories: one closed vocabulary for what a purpose uses and what
// an attribute is. A purpose may use an attribute only if it lists the
// attribute's category.
const (
	CategoryContact             = "contact"              // email address, postal address
	CategoryName                = "name"                 // first name, full name
	CategoryDemographic         = "demographic"          // birthday, age band, gender
	CategoryPreference          = "preference"           // stated tastes: favourite brands, styles
	CategoryPurchaseHistory     = "purchase_history"     // what was bought
	CategorySpend               = "spend"                // amounts: order totals, lifetime value
	CategoryBrowsing            = "browsing"             // what was looked at
	CategoryLocation            = "location"             // city, region, precise location
	CategoryVices               = "vices"                // alcohol, tobacco, gambling
	CategoryPhysicalDescription = "physical_description" // sizes, height, weight
	CategoryGovernmentID        = "government_id"        // social security, licence, passport numbers
)

// Categories returns the whole vocabulary of data categories: the ordinary
// ones, then SensitiveCategories.
func Categories() []string {
	return append([]string{CategoryContact, CategoryName, CategoryDemographic, CategoryPreference,
		CategoryPurchaseHistory, CategorySpend, CategoryBrowsing, CategoryLocation, CategoryVices,
		CategoryPhysicalDescription, CategoryGovernmentID}, SensitiveCategories()...)
}

// categoryAliases are the names purposes used before the vocabulary was
// closed, and the category each stands for: purposes stored with them stay
// valid, and a new purpose may still name them.
var categoryAliases = map[string]string{
	"email":            CategoryContact,
	"phone":            CategoryContact,
	"address":          CategoryContact,
	"birthday":         CategoryDemographic,
	"age":              CategoryDemographic,
	"browsing_history": CategoryBrowsing,
	"shoe_size":        CategoryPhysicalDescription,
	"size":             CategoryPhysicalDescription,
}

// CanonicalCategory returns the vocabulary's name for c (an alias from
// before the vocabulary was closed is mapped), and whether c is known.
func CanonicalCategory(c string) (string, bool) {
	if a, ok := categoryAliases[c]; ok {
		return a, true
	}
	return c, knownCategory(c)
}

// knownCategory reports whether c is in the vocabulary (without building
// the list: the guard asks on every attribute of every message).
func knownCategory(c string) bool {
	switch c {
	case CategoryContact, CategoryName, CategoryDemographic, CategoryPreference, CategoryPurchaseHistory, CategorySpend,
		CategoryBrowsing, CategoryLocation, CategoryVices, CategoryPhysicalDescription, CategoryGovernmentID,
		"health", "finances", "religion", "politics", "sexual_orientation", "relationship_status", "ethnicity", "biometrics", "genetics", "trade_union":
		return true
	}
	return false
}

// SensitiveCategory reports whether c (or the category it is an alias of)
// is sensitive: used only under a sensitive purpose the subject switched on.
func SensitiveCategory(c string) bool {
	c, _ = CanonicalCategory(c)
	switch c {
	case "health", "finances", "religion", "politics", "sexual_orientation", "relationship_status", "ethnicity", "biometrics", "genetics", "trade_union":
		return true
	}
	return false
}

// CheckCategory returns the canonical name of category c, or an Invalid
// error naming the vocabulary.
func CheckCategory(field, c string) (string, error) {
	canon, ok := CanonicalCategory(c)
	if !ok {
		return "", apperr.New(apperr.Invalid, "%s %q is not a data category; use one of %s", field, c, strings.Join(Categories(), ", ")).WithDetail(CodeInvalidCategory)
	}
	return canon, nil
}

// Uses reports whether the purpose lists category c (aliases of stored
// purposes count as their category).
func (p Purpose) Uses(c string) bool {
	return slices.ContainsFunc(p.DataCategories, func(d string) bool {
		canon, _ := CanonicalCategory(d)
		return canon == c
	})
}
