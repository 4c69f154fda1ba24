/**
 * Fetching a job's module from a URL a stranger named, without letting that
 * stranger reach inside the node's network.
 *
 * Only `http:` and `https:` are fetched. Every address a host name resolves
 * to is checked before connecting, and the connection goes to the checked
 * address (the check is the DNS lookup of the connection itself, so a name
 * cannot resolve to a public address for the check and a private one for the
 * connection). Loopback, private, link-local, multicast, unspecified and
 * other non-global addresses are refused unless the operator allows private
 * targets. Redirects are followed by hand, at most three, each checked the
 * same way. The body streams into a buffer that never exceeds the size cap,
 * under one overall timeout. Errors say what was refused, never what was
 * found behind a refused address.
 * @module
 */
import http from "node:http";
import https from "node:https";
import { lookup as dnsLookup } from "node:dns";
import type { LookupAddress } from "node:dns";
import ipaddr from "ipaddr.js";

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
export function isPublicAddress(address: string): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return false;
  }
  if (
    parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()
  ) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed.range() === "unicast";
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A DNS lookup for node:http that refuses non-public answers. */
function checkedLookup(allowPrivate: boolean) {
  return (
    hostname: string,
    options: { all?: boolean },
    callback: LookupCallback,
  ) => {
    dnsLookup(hostname, { all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const all = addresses as LookupAddress[];
      const refused = all.find((a) => !isPublicAddress(a.address));
      if (!allowPrivate && (all.length === 0 || refused)) {
        return callback(
          new ModuleFetchError(
            `module_url host ${hostname} resolves to a non-public address; refused`,
          ),
          [],
        );
      }
      if (options.all) return callback(null, all);
      callback(null, all[0].address, all[0].family);
    });
  };
}

function checkUrl(text: string, allowPrivate: boolean): URL {
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
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(host) && !allowPrivate && !isPublicAddress(host)) {
    throw new ModuleFetchError(
      `module_url points to a non-public address (${host}); refused`,
    );
  }
  return url;
}

interface Answer {
  status: number;
  location: string | null;
  body: Uint8Array | null;
}

function request(
  url: URL,
  options: Required<ModuleSourceOptions>,
  signal: AbortSignal,
): Promise<Answer> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    const req = client.get(url, {
      lookup: checkedLookup(options.allowPrivate),
      signal,
      headers: { accept: "application/wasm, */*" },
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return resolve({
          status,
          location: res.headers.location ?? null,
          body: null,
        });
      }
      if (status !== 200) {
        res.resume();
        return resolve({ status, location: null, body: null });
      }
      const declared = Number(res.headers["content-length"] ?? NaN);
      if (declared > options.maxBytes) {
        req.destroy();
        return reject(tooLarge(options.maxBytes));
      }
      // Known length: one buffer of that size; else grow by doubling, never
      // past the cap.
      let buffer = new Uint8Array(
        Number.isSafeInteger(declared) ? declared : 64 * 1024,
      );
      let size = 0;
      res.on("data", (chunk: Uint8Array) => {
        if (size + chunk.length > options.maxBytes) {
          req.destroy();
          return reject(tooLarge(options.maxBytes));
        }
        if (size + chunk.length > buffer.length) {
          const grown = new Uint8Array(
            Math.min(
              options.maxBytes,
              Math.max(buffer.length * 2, size + chunk.length),
            ),
          );
          grown.set(buffer.subarray(0, size));
          buffer = grown;
        }
        buffer.set(chunk, size);
        size += chunk.length;
      });
      res.on(
        "end",
        () =>
          resolve({ status, location: null, body: buffer.subarray(0, size) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
  });
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
  let current = checkUrl(url, policy.allowPrivate);
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
    current = checkUrl(next, policy.allowPrivate);
  }
}
