package consent

// Error details the consent domain returns (the public code of a JSON error,
// see apperr.Error.Detail). Other packages compare against these names.
const (
	CodeUnknownPurpose        = "unknown_purpose"
	CodeInvalidPurpose        = "invalid_purpose"
	CodeInvalidSubject        = "invalid_subject"
	CodeInvalidState          = "invalid_state"
	CodeInvalidChoices        = "invalid_choices"
	CodeExplicitOptInRequired = "explicit_opt_in_required"
	CodeInvalidNoticeVersion  = "invalid_notice_version"
	CodeWriteConflict         = "write_conflict"
	CodeIdempotencyKeyInvalid = "invalid_idempotency_key"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeRequestInProgress     = "request_in_progress"
	CodeInvalidCategory       = "invalid_category"
	CodeInvalidLevel          = "invalid_privacy_level"
	CodeInvalidLocale         = "invalid_locale"
	CodeInvalidRelationship   = "invalid_relationship"
	// CodeSubjectErased refuses anything for a subject that was erased.
	CodeSubjectErased = "subject_erased"
	// Codes of an import refused whole, and of its invalid lines.
	CodeEmptyImport     = "empty_import"
	CodeTooManyLines    = "too_many_lines"
	CodeInvalidLines    = "invalid_lines"
	CodeInvalidGivenAt  = "invalid_given_at"
	CodeGivenAtInFuture = "given_at_in_future"
	CodeInvalidSource   = "invalid_source"
	CodeInvalidProof    = "invalid_proof"
)
