// Package receipts issues and checks signed consent receipts: records in the
// shape of the Kantara Initiative Consent Receipt Specification v1.1, carried
// as JWTs signed with Ed25519 (alg EdDSA) so that anyone holding the public
// keys, published as a JWKS, can check that Fineline issued a receipt and that
// it has not been changed since.
//
// Kantara lists only the purposes a person consented to; what was denied or
// withdrawn travels in the "fineline" extension claim (see [Extension]).
package receipts
