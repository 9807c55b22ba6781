package fields

// Error details the fields package returns; the HTTP layer and other
// domains compare against these names.
const (
	CodeUnknownField    = "unknown_field_key"
	CodeInvalidFieldKey = "invalid_field_key"
	CodeInvalidValue    = "invalid_value"
	// CodeAttributeExists: the key is a declared attribute's (or a field's).
	CodeAttributeExists = "attribute_exists"
)
