/**
 * Fetching a job's module from a URL a stranger named, without letting that
 * stranger reach inside the node's network.
 *
 * Only `http:` and `https:` are fetched. Every address a host name resolves
 * to must be global unicast: loopback, private, link-local, multicast,
 * unspecified and other non-global addresses are refused unless the operator
 * allows private targets. For `http:` the connection goes to the address
 * that was checked (the URL is rewritten to it, with the original Host), so a
 * name cannot resolve to a public address for the check and a private one
 * for the connection. For `https:` the name is resolved again by the TLS
 * connection; a rebinding name then reaches at most a TLS handshake, which
 * fails the certificate check before any request is sent. Redirects are
 * followed by hand, at most three, each checked the same way. The body
 * streams under the size cap (a body refused at the cap was never held
 * whole) within one overall timeout. Errors say what was refused, never what
 * was found behind a refused address.
 * @module
 */
import type { IPv4, IPv6 } from "ipaddr.js";
import { concatBytes } from "../schemas/mod.ts";

/**
 * ipaddr.js, loaded on first use: only nodes that fetch module URLs need it
 * (a CommonJS package, it costs every command that loads this layer about
 * 15 ms otherwise).
 */
let addressParser: Promise<typeof import("ipaddr.js")> | undefined;
const ipaddr = () =>
  addressParser ??= import("ipaddr.js").then((m) => m.default);

/** A module that cannot be fetched; the message is one line, safe to show a peer. */
export class ModuleFetchError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ModuleFetchError";
  }
}

/** How module URLs are fetched. */
export interface ModuleSourceOptions {
  /** Largest module in bytes. */
  maxBytes: number;
  /** Whole fetch, redirects included (default 30 s). */
  timeoutMs?: number;
  /** Fetch from loopback and private addresses too (operator opt-in). */
  allowPrivate?: boolean;
  /** Redirects followed (default 3). */
  maxRedirects?: number;
}

/**
 * True for addresses a stranger's URL may make this node connect to: global
 * unicast only (IPv4-mapped IPv6 addresses are judged as IPv4).
 */
export async function isPublicAddress(address: string): Promise<boolean> {
  let parsed: IPv4 | IPv6;
  try {
    parsed = (await ipaddr()).parse(address);
  } catch {
    return false;
  }
  if (parsed.kind() === "ipv6") {
    const v6 = parsed as IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    // ::/96 (the deprecated IPv4-compatible form, ::127.0.0.1 among them)
    // is no global address, whatever range the library gives it.
    else if (v6.parts.slice(0, 6).every((part) => part === 0)) return false;
  }
  return parsed.range() === "unicast";
}

/** Resolves a host and refuses it unless every address is allowed. */
async function checkedAddress(
  host: string,
  allowPrivate: boolean,
): Promise<string> {
  if ((await ipaddr()).isValid(host)) {
    if (!allowPrivate && !await isPublicAddress(host)) {
      throw new ModuleFetchError(
        `module_url points to a non-public address (${host}); refused`,
      );
    }
    return host;
  }
  let addresses: { address: string }[];
  try {
    const { lookup } = await import("node:dns/promises");
    addresses = await lookup(host, { all: true });
  } catch {
    throw new ModuleFetchError(`module_url host ${host} does not resolve`);
  }
  const refused = await Promise.all(
    addresses.map(async (a) => !await isPublicAddress(a.address)),
  );
  if (addresses.length === 0 || (!allowPrivate && refused.includes(true))) {
    throw new ModuleFetchError(
      `module_url host ${host} resolves to a non-public address; refused`,
    );
  }
  return addresses[0].address;
}

function checkUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ModuleFetchError("module_url is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ModuleFetchError(
      `module_url must be http or https, not ${url.protocol.slice(0, 16)}`,
    );
  }
  if (url.username || url.password) {
    throw new ModuleFetchError("module_url may not carry credentials");
  }
  return url;
}

interface Answer {
  status: number;
  location: string | null;
  body: Uint8Array | null;
}

/** Lets a request name its Host while connecting to a checked address. */
let pinningClient: Deno.HttpClient | undefined;

async function request(
  url: URL,
  options: Required<ModuleSourceOptions>,
  signal: AbortSignal,
): Promise<Answer> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const address = await checkedAddress(host, options.allowPrivate);
  let target = url;
  // No content coding: the cap then counts the bytes on the wire.
  const headers: Record<string, string> = {
    accept: "application/wasm, */*",
    "accept-encoding": "identity",
  };
  if (url.protocol === "http:") {
    target = new URL(url);
    target.hostname = address.includes(":") ? `[${address}]` : address;
    headers.host = url.host;
    pinningClient ??= Deno.createHttpClient({ allowHost: true });
  }
  const response = await fetch(target, {
    headers,
    redirect: "manual",
    signal,
    client: url.protocol === "http:" ? pinningClient : undefined,
  });
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    return {
      status: response.status,
      location: response.headers.get("location"),
      body: null,
    };
  }
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel();
    return { status: response.status, location: null, body: null };
  }
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > options.maxBytes) {
    await response.body.cancel();
    throw tooLarge(options.maxBytes);
  }
  // Chunks are kept as they come and joined once at the end, so a body
  // refused at the cap never cost more than the cap.
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > options.maxBytes) {
      chunks.length = 0;
      await reader.cancel();
      throw tooLarge(options.maxBytes);
    }
    chunks.push(value);
  }
  return { status: 200, location: null, body: concatBytes(chunks) };
}

function tooLarge(limit: number): ModuleFetchError {
  return new ModuleFetchError(
    `module at module_url is larger than ${limit} bytes`,
  );
}

/**
 * Fetches a module from a stranger's URL under the policy above; throws
 * {@link ModuleFetchError} with a reason fit to send back to that stranger.
 */
export async function fetchModule(
  url: string,
  options: ModuleSourceOptions,
): Promise<Uint8Array> {
  const policy: Required<ModuleSourceOptions> = {
    timeoutMs: 30_000,
    allowPrivate: false,
    maxRedirects: 3,
    ...options,
  };
  const signal = AbortSignal.timeout(policy.timeoutMs);
  let current = checkUrl(url);
  for (let redirects = 0;; redirects++) {
    let answer: Answer;
    try {
      answer = await request(current, policy, signal);
    } catch (error) {
      if (error instanceof ModuleFetchError) throw error;
      if (signal.aborted) {
        throw new ModuleFetchError(
          `module_url took longer than ${policy.timeoutMs / 1000} s`,
        );
      }
      // Connection errors would tell a stranger what listens where.
      throw new ModuleFetchError("module_url could not be fetched");
    }
    if (answer.body) return answer.body;
    if (answer.location === null) {
      throw new ModuleFetchError(`module_url answered HTTP ${answer.status}`);
    }
    if (redirects >= policy.maxRedirects) {
      throw new ModuleFetchError(
        `module_url redirected more than ${policy.maxRedirects} times`,
      );
    }
    let next: string;
    try {
      next = new URL(answer.location, current).href;
    } catch {
      throw new ModuleFetchError("module_url redirected to an invalid URL");
    }
    current = checkUrl(next);
  }
}
