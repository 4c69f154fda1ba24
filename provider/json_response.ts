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
