/**
 * The names of the documents Phase validates, and the name of each one's
 * compiled validator: apart from their schemas (schemas/documents.ts), so
 * that validating loads no schema file.
 * @module
 */

/** Names of the documents schemas/validate.ts knows. */
export type DocumentKind =
  | "receipt"
  | "job manifest"
  | "boot manifest"
  | "job offer"
  | "job request"
  | "accepted message"
  | "rejected message"
  | "result message"
  | "job body"
  | "record"
  | "capability record"
  | "boot-provider record"
  | "capable peers"
  | "boot cache header"
  | "disagreement report"
  | "release signature";

/** The name compiled_validators.js exports the validator of `kind` under. */
export function validatorName(kind: DocumentKind): string {
  return kind.replace(/[^a-z]+/g, "_");
}
