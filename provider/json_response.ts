/**
 * JSON answers, including the one error shape every provider route uses:
 * `{"error": <stable code for the status>, "reason": <one line for people>}`.
 * @module
 */

/** A JSON response; `space` as for JSON.stringify (0 for compact bodies). */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  space = 2,
): Response {
  return new Response(JSON.stringify(body, null, space) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The `error` code of each status the provider answers with. */
export const ERROR_CODES: Readonly<Record<number, string>> = {
  400: "bad_request",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  412: "precondition_failed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  416: "range_not_satisfiable",
  429: "too_many_requests",
  500: "internal_error",
  503: "unavailable",
};

/** The error body for a status: `{"error": code, "reason": reason}`. */
export function errorBody(
  status: number,
  reason: string,
): { error: string; reason: string } {
  return { error: ERROR_CODES[status] ?? `http_${status}`, reason };
}

/** An error answer in the provider's one error shape. */
export function jsonError(
  status: number,
  reason: string,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse(status, errorBody(status, reason), headers, 0);
}
