/**
 * What a request asks for, read without trusting its Host header. Deno
 * builds `request.url` as `http://` + Host + the request target, so a Host
 * such as `a/stable/x86_64/hello.wasm?` would move the path into the query;
 * the provider routes by the target alone and checks Host separately.
 * @module
 */

/**
 * The request target as sent: path and query, e.g. `/stable/x86_64/a?b`.
 * `host` is the request's Host header when the caller has it already.
 */
export function requestTarget(
  request: Request,
  host: string | null = request.headers.get("host"),
): string {
  const url = request.url;
  if (host !== null) {
    const prefix = `http://${host}`;
    if (url.startsWith(prefix) && url.charCodeAt(prefix.length) === 47) {
      return url.slice(prefix.length);
    }
  }
  // Absolute-form targets (and requests without Host): the authority was
  // parsed by the HTTP engine, so the first slash after it starts the path.
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  return slash < 0 ? "/" : url.slice(slash);
}

/** The path of a request target (query and fragment removed). */
export function targetPath(target: string): string {
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}

const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_~.-]+))(?::(\d{1,5}))?$/;

/**
 * True when a Host header value is `host[:port]` per RFC 9110 §7.2 (a
 * registered name or IPv4 address, or an IPv6 literal in brackets, and a
 * port up to 65535).
 */
export function validHost(value: string): boolean {
  const match = HOST.exec(value);
  if (!match) return false;
  if (match[3] !== undefined && Number(match[3]) > 65535) return false;
  if (match[1] !== undefined) {
    try {
      new URL(`http://[${match[1]}]/`);
    } catch {
      return false;
    }
  }
  return true;
}
