/**
 * RFC 9110 behaviour of the provider, in process: the handler answers
 * `Request`s directly. A property test compares ranges and conditional
 * requests with a small model of the RFC written independently below.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ArtifactStore } from "../provider/artifacts.ts";
import { fileResponse, type ServedFile } from "../provider/file_response.ts";
import { createHandler, type ProviderHandler } from "../provider/http.ts";
import { ManifestPublisher } from "../provider/manifest_publisher.ts";
import { Metrics } from "../provider/metrics.ts";
import { generateKey, sha256Hex } from "../schemas/mod.ts";
import { tempDir } from "./helpers.ts";

interface Lab {
  dir: string;
  handler: ProviderHandler;
  small: Uint8Array;
  metrics: Metrics;
  cleanup: () => Promise<void>;
}

async function lab(advertise?: string[]): Promise<Lab> {
  const [dir, cleanup] = await tempDir();
  const arch = `${dir}/artifacts/stable/x86_64`;
  await Deno.mkdir(arch, { recursive: true });
  const small = crypto.getRandomValues(new Uint8Array(1000));
  await Deno.writeFile(`${arch}/small.bin`, small);
  await Deno.writeFile(`${arch}/vmlinuz`, small.subarray(0, 100));
  await Deno.writeFile(`${arch}/initramfs.img`, small.subarray(0, 200));
  const key = await generateKey();
  const store = new ArtifactStore({ root: `${dir}/artifacts` });
  const metrics = new Metrics();
  const handler = createHandler({
    version: "0.0.0",
    channel: "stable",
    arch: "x86_64",
    key,
    store,
    metrics,
    jobs: null,
    dataDir: dir,
    minFreeBytes: 0,
    advertise,
    publisher: new ManifestPublisher({
      store,
      key,
      version: "0.0.0",
      cmdline: "console=ttyS0",
      addresses: () => [],
    }),
  });
  return { dir, handler, small, metrics, cleanup };
}

const get = (
  handler: ProviderHandler,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
) =>
  Promise.resolve(
    handler(new Request(`http://provider.test${path}`, { method, headers })),
  );

async function errorOf(response: Response) {
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "reason"]);
  return body as { error: string; reason: string };
}

Deno.test("rfc 9110: failing If-Match and If-Unmodified-Since answer 412", async () => {
  const l = await lab();
  try {
    const path = "/stable/x86_64/small.bin";
    const etag = (await get(l.handler, path)).headers.get("etag")!;
    const mismatch = await get(l.handler, path, { "if-match": '"other"' });
    assert.equal(mismatch.status, 412);
    assert.equal((await errorOf(mismatch)).error, "precondition_failed");
    // A weak tag never matches If-Match (strong comparison).
    assert.equal(
      (await get(l.handler, path, { "if-match": `W/${etag}` })).status,
      412,
    );
    for (const ok of [etag, "*", `"x", ${etag}`]) {
      const r = await get(l.handler, path, { "if-match": ok });
      assert.equal(r.status, 200, ok);
      assert.deepEqual(new Uint8Array(await r.arrayBuffer()), l.small);
    }
    const old = new Date(Date.now() - 86_400_000).toUTCString();
    const stale = await get(l.handler, path, { "if-unmodified-since": old });
    assert.equal(stale.status, 412);
    await stale.body?.cancel();
    const future = new Date(Date.now() + 86_400_000).toUTCString();
    assert.equal(
      (await get(l.handler, path, { "if-unmodified-since": future })).status,
      200,
    );
  } finally {
    await l.cleanup();
  }
});

Deno.test("rfc 9110: suffix longer than the file, unit case, too many ranges", async () => {
  const l = await lab();
  try {
    const path = "/stable/x86_64/small.bin";
    const whole = await get(l.handler, path, { range: "bytes=-5000" });
    assert.equal(whole.status, 206);
    assert.equal(whole.headers.get("content-range"), "bytes 0-999/1000");
    assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), l.small);
    const upper = await get(l.handler, path, { range: "Bytes=0-1" });
    assert.equal(upper.status, 206);
    assert.deepEqual(
      new Uint8Array(await upper.arrayBuffer()),
      l.small.slice(0, 2),
    );
    // 40 disjoint ranges: refused, with a small body.
    const many = Array.from({ length: 40 }, (_, i) => `${i * 20}-${i * 20 + 1}`)
      .join(",");
    const refused = await get(l.handler, path, { range: `bytes=${many}` });
    assert.equal(refused.status, 416);
    assert.equal(refused.headers.get("content-range"), "bytes */1000");
    assert.match((await errorOf(refused)).reason, /40 ranges/);
    // 40 copies of one range coalesce into one part.
    const same = await get(l.handler, path, {
      range: `bytes=${Array(40).fill("0-499").join(",")}`,
    });
    assert.equal(same.status, 206);
    assert.equal(same.headers.get("content-range"), "bytes 0-499/1000");
    await same.body?.cancel();
    const unsatisfiable = await get(l.handler, path, { range: "bytes=1000-" });
    assert.equal(unsatisfiable.status, 416);
    assert.equal((await errorOf(unsatisfiable)).error, "range_not_satisfiable");
  } finally {
    await l.cleanup();
  }
});

Deno.test("rfc 9110: weak If-None-Match on the manifest, cache headers", async () => {
  const l = await lab();
  try {
    const manifest = await get(l.handler, "/manifest.json");
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers.get("cache-control"), "no-cache");
    const etag = manifest.headers.get("etag")!;
    await manifest.body?.cancel();
    for (const tag of [etag, `W/${etag}`, `"x", W/${etag}`, "*"]) {
      const r = await get(l.handler, "/manifest.json", {
        "if-none-match": tag,
      });
      assert.equal(r.status, 304, tag);
      assert.equal(r.headers.get("etag"), etag);
    }
    const artifact = await get(l.handler, "/stable/x86_64/small.bin");
    assert.equal(artifact.headers.get("cache-control"), "no-cache");
    assert.equal(
      artifact.headers.get("x-artifact-hash"),
      `sha256:${await sha256Hex(l.small)}`,
    );
    await artifact.body?.cancel();
  } finally {
    await l.cleanup();
  }
});

Deno.test("errors: one shape with a stable code per status", async () => {
  const l = await lab();
  try {
    const cases: [string, string, number, string][] = [
      ["/stable/x86_64/", "GET", 404, "not_found"],
      ["/stable/x86_64/missing", "GET", 404, "not_found"],
      ["/stable/x86_64/a%2fb", "GET", 400, "bad_request"],
      ["/jobs", "POST", 404, "not_found"],
      ["/health", "DELETE", 405, "method_not_allowed"],
      ["/nightly/x86_64/manifest.json", "GET", 404, "not_found"],
    ];
    for (const [path, method, status, code] of cases) {
      const r = await get(l.handler, path, {}, method);
      assert.equal(r.status, status, `${method} ${path}`);
      assert.equal((await errorOf(r)).error, code, `${method} ${path}`);
    }
  } finally {
    await l.cleanup();
  }
});

Deno.test("boot.ipxe: advertised URL, else the validated Host with Vary", async () => {
  const plain = await lab();
  const advertised = await lab(["http://boot.example:8080/"]);
  try {
    const byHost = await plain.handler(
      new Request("http://10.0.0.5:8080/boot.ipxe", {
        headers: { host: "10.0.0.5:8080" },
      }),
    );
    assert.equal(byHost.status, 200);
    assert.equal(byHost.headers.get("vary"), "host");
    assert.match(
      await byHost.text(),
      /^kernel http:\/\/10\.0\.0\.5:8080\/stable\/x86_64\/vmlinuz /m,
    );
    const fixed = await advertised.handler(
      new Request("http://10.0.0.5:8080/boot.ipxe", {
        headers: { host: "10.0.0.5:8080" },
      }),
    );
    assert.equal(fixed.headers.get("vary"), null);
    assert.match(
      await fixed.text(),
      /^kernel http:\/\/boot\.example:8080\/stable\/x86_64\/vmlinuz /m,
    );
  } finally {
    await plain.cleanup();
    await advertised.cleanup();
  }
});

Deno.test("health: an invalid offline manifest is reported, and served as 503", async () => {
  const l = await lab();
  try {
    assert.equal((await get(l.handler, "/health")).status, 200);
    await Deno.writeTextFile(
      `${l.dir}/artifacts/stable/x86_64/manifest.json`,
      '{"format": "phase-boot-manifest/1"',
    );
    await new Promise((r) => setTimeout(r, 1100)); // the publisher rescans each second
    const health = await get(l.handler, "/health");
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.manifests_valid, false);
    assert.match(body.reason, /offline manifest stable\/x86_64\/manifest.json/);
    const manifest = await get(l.handler, "/manifest.json");
    assert.equal(manifest.status, 503);
    assert.match((await errorOf(manifest)).reason, /is invalid/);
  } finally {
    await l.cleanup();
  }
});

// ---- The reference model ------------------------------------------------

interface ModelAnswer {
  status: number;
  /** Parts as [start, end] (inclusive), for 200/206. */
  parts?: [number, number][];
}

/**
 * RFC 9110 §13.2.2 and §14 for GET/HEAD of one representation, written
 * without looking at the implementation: ranges are turned into the set of
 * byte positions they cover, and the parts are that set's runs.
 */
function model(
  method: string,
  headers: Record<string, string>,
  size: number,
  etag: string,
  modified: number,
): ModelAnswer {
  const tags = (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean);
  const date = (v: string | undefined) =>
    v === undefined || Number.isNaN(Date.parse(v)) ? null : Date.parse(v);
  if (headers["if-match"] !== undefined) {
    if (!tags(headers["if-match"]).some((t) => t === "*" || t === etag)) {
      return { status: 412 };
    }
  } else {
    const since = date(headers["if-unmodified-since"]);
    if (since !== null && modified > since) return { status: 412 };
  }
  if (headers["if-none-match"] !== undefined) {
    const weak = (t: string) => t.replace(/^W\//, "");
    if (
      tags(headers["if-none-match"]).some((t) => t === "*" || weak(t) === etag)
    ) return { status: 304 };
  } else {
    const since = date(headers["if-modified-since"]);
    if (since !== null && modified <= since) return { status: 304 };
  }
  const whole: ModelAnswer = {
    status: 200,
    parts: size ? [[0, size - 1]] : [],
  };
  const range = headers["range"];
  if (method !== "GET" || range === undefined || size === 0) return whole;
  const ifRange = headers["if-range"];
  if (
    ifRange !== undefined &&
    !(ifRange.startsWith('"') ? ifRange === etag : date(ifRange) === modified)
  ) return whole;
  const [unit, set] = range.split(/=(.*)/s);
  if (set === undefined || unit.toLowerCase() !== "bytes") return whole;
  const specs = set.split(",").map((s) => s.trim()).filter(Boolean);
  if (specs.length === 0) return whole;
  const covered = new Array<number>(size).fill(Infinity); // first spec covering each byte
  for (const [i, spec] of specs.entries()) {
    const m = /^(\d*)-(\d*)$/.exec(spec);
    if (!m || (m[1] === "" && m[2] === "")) return whole;
    let from: number, to: number;
    if (m[1] === "") {
      from = Math.max(0, size - Number(m[2]));
      to = Number(m[2]) === 0 ? -1 : size - 1;
    } else {
      from = Number(m[1]);
      if (m[2] !== "" && Number(m[2]) < from) return whole; // invalid spec
      to = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    }
    for (let b = from; b <= to; b++) covered[b] = Math.min(covered[b], i);
  }
  const runs: { start: number; end: number; first: number }[] = [];
  for (let b = 0; b < size; b++) {
    if (covered[b] === Infinity) continue;
    const last = runs[runs.length - 1];
    if (last && last.end === b - 1) {
      last.end = b;
      last.first = Math.min(last.first, covered[b]);
    } else runs.push({ start: b, end: b, first: covered[b] });
  }
  if (runs.length === 0 || runs.length > 16) return { status: 416 };
  runs.sort((a, b) => a.first - b.first);
  return { status: 206, parts: runs.map((r) => [r.start, r.end]) };
}

/** Parts of an answer as [start, end, bytes]. */
async function answerParts(
  response: Response,
  size: number,
): Promise<[number, number, Uint8Array][]> {
  const body = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get("content-type") ?? "";
  const boundary = /^multipart\/byteranges; boundary=(.+)$/.exec(type)?.[1];
  if (!boundary) {
    const range = response.headers.get("content-range");
    const [start, end] = range
      ? range.match(/^bytes (\d+)-(\d+)\/\d+$/)!.slice(1).map(Number)
      : [0, size - 1];
    return size === 0 ? [] : [[start, end, body]];
  }
  const text = new TextDecoder("latin1").decode(body);
  const parts: [number, number, Uint8Array][] = [];
  const head = new RegExp(
    `(?:^|\\r\\n)--${boundary}\\r\\ncontent-type: [^\\r]+\\r\\ncontent-range: bytes (\\d+)-(\\d+)/\\d+\\r\\n\\r\\n`,
    "g",
  );
  for (const m of text.matchAll(head)) {
    const start = Number(m[1]), end = Number(m[2]);
    const from = m.index! + m[0].length;
    parts.push([start, end, body.slice(from, from + end - start + 1)]);
  }
  assert.ok(text.endsWith(`\r\n--${boundary}--\r\n`), "multipart tail");
  return parts;
}

Deno.test("property: ranges and conditionals match the RFC 9110 model", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const modified = Date.parse("Tue, 01 Jul 2025 10:00:00 GMT");
    const sizes = [0, 1, 37, 300];
    const files = new Map<number, ServedFile>();
    for (const size of sizes) {
      const bytes = crypto.getRandomValues(new Uint8Array(size));
      await Deno.writeFile(`${dir}/f${size}`, bytes);
      files.set(size, {
        path: `${dir}/f${size}`,
        size,
        mtime: new Date(modified + 250),
        sha256: await sha256Hex(bytes),
        contentType: "application/octet-stream",
        bytes,
      });
    }
    const dates = [-1000, 0, 1000].map((d) => new Date(modified + d))
      .map((d) => d.toUTCString()).concat(["yesterday"]);
    const tagFor = (file: ServedFile) => [
      `"${file.sha256}"`,
      `W/"${file.sha256}"`,
      '"other"',
      'W/"other"',
      "*",
    ];
    const spec = fc.oneof(
      fc.tuple(fc.nat(320), fc.nat(320)).map(([a, b]) => `${a}-${b}`),
      fc.nat(320).map((a) => `${a}-`),
      fc.nat(320).map((n) => `-${n}`),
      fc.constantFrom("x-1", "", " 5-9 ", "-", "1-2-3"),
    );
    const range = fc.tuple(
      fc.constantFrom("bytes", "Bytes", "BYTES", "items"),
      fc.array(spec, { minLength: 0, maxLength: 20 }),
    ).map(([unit, specs]) => `${unit}=${specs.join(",")}`);
    const request = fc.record({
      size: fc.constantFrom(...sizes),
      inMemory: fc.boolean(),
      method: fc.constantFrom("GET", "HEAD"),
      tagPicks: fc.array(fc.nat(4), { minLength: 1, maxLength: 3 }),
      ifMatch: fc.boolean(),
      ifNoneMatch: fc.boolean(),
      ifUnmodifiedSince: fc.option(fc.nat(3), { nil: undefined }),
      ifModifiedSince: fc.option(fc.nat(3), { nil: undefined }),
      range: fc.option(range, { nil: undefined }),
      ifRange: fc.option(fc.nat(5), { nil: undefined }),
    }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const size = r.size ?? 0;
        const stored = files.get(size)!;
        const file = r.inMemory ? stored : { ...stored, bytes: undefined };
        const tags = tagFor(file);
        const list = (r.tagPicks ?? [0]).map((i) => tags[i]).join(", ");
        const headers: Record<string, string> = {};
        if (r.ifMatch) headers["if-match"] = list;
        if (r.ifNoneMatch) headers["if-none-match"] = list;
        if (r.ifUnmodifiedSince !== undefined) {
          headers["if-unmodified-since"] = dates[r.ifUnmodifiedSince];
        }
        if (r.ifModifiedSince !== undefined) {
          headers["if-modified-since"] = dates[r.ifModifiedSince];
        }
        if (r.range !== undefined) headers["range"] = r.range;
        if (r.ifRange !== undefined) {
          headers["if-range"] = [...tags.slice(0, 3), ...dates][r.ifRange];
        }
        const method = r.method ?? "GET";
        const response = fileResponse(
          new Request("http://p.test/f", { method, headers }),
          file,
          { written: () => {} },
        );
        const expected = model(
          method,
          headers,
          size,
          `"${file.sha256}"`,
          modified,
        );
        assert.equal(response.status, expected.status, JSON.stringify(headers));
        assert.equal(response.headers.get("etag"), `"${file.sha256}"`);
        if (expected.status === 416) {
          assert.equal(
            response.headers.get("content-range"),
            `bytes */${size}`,
          );
        }
        if (!expected.parts || method === "HEAD") {
          await response.body?.cancel();
          if (method === "HEAD" && expected.status === 200) {
            assert.equal(response.headers.get("content-length"), String(size));
          }
          return;
        }
        const got = await answerParts(response, size);
        assert.deepEqual(
          got.map(([s, e]) => [s, e]),
          expected.parts,
          JSON.stringify(headers),
        );
        for (const [s, e, bytes] of got) {
          assert.deepEqual(bytes, stored.bytes!.slice(s, e + 1));
        }
      }),
      { numRuns: 400 },
    );
  } finally {
    await cleanup();
  }
});
