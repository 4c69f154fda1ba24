import assert from "node:assert/strict";
import { download, type Provider, startProvider } from "../provider/mod.ts";
import {
  generateKey,
  type NodeKey,
  sha256Hex,
  verifyManifest,
  verifyReceipt,
} from "../schemas/mod.ts";
import { JobService, type JobServiceOptions } from "../node/mod.ts";
import { cli, example, tempDir, text } from "./helpers.ts";

const SECRET = "TOP-SECRET-OUTSIDE-THE-ARTIFACTS";

interface Fixture {
  dir: string;
  provider: Provider;
  key: NodeKey;
  kernel: Uint8Array;
  cleanup: () => Promise<void>;
}

async function fixture(
  options: Partial<Parameters<typeof startProvider>[0]> = {},
  jobOptions: Partial<JobServiceOptions> = {},
): Promise<Fixture> {
  const [dir, removeDir] = await tempDir();
  const arch = `${dir}/artifacts/stable/x86_64`;
  await Deno.mkdir(arch, { recursive: true });
  const kernel = crypto.getRandomValues(
    new Uint8Array(1024 * 1024 + 17).subarray(0, 65536),
  );
  const big = new Uint8Array(1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 65536) {
    crypto.getRandomValues(big.subarray(i, Math.min(i + 65536, big.length)));
  }
  await Deno.writeFile(`${arch}/vmlinuz`, big);
  await Deno.writeFile(`${arch}/initramfs.img`, kernel);
  await Deno.writeFile(`${arch}/hello.wasm`, example("hello"));
  await Deno.writeTextFile(`${dir}/secret.txt`, SECRET);
  await Deno.symlink(`${dir}/secret.txt`, `${arch}/link-out`);
  await Deno.mkdir(`${dir}/data`);
  const key = await generateKey();
  const jobs = new JobService({
    key,
    arch: "x86_64",
    sandboxSize: 1,
    ...jobOptions,
  });
  const provider = await startProvider({
    artifactsDir: `${dir}/artifacts`,
    dataDir: `${dir}/data`,
    key,
    hostname: "127.0.0.1",
    port: 0,
    jobs,
    ...options,
  });
  return {
    dir,
    provider,
    key,
    kernel: big,
    cleanup: async () => {
      await provider.close();
      await jobs.close();
      await removeDir();
    },
  };
}

/** Sends a raw HTTP/1.1 request and returns the whole answer as text. */
async function raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  const deadline = setTimeout(() => conn.close(), 5000);
  try {
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(deadline);
    try {
      conn.close();
    } catch {
      // closed by the deadline
    }
  }
  return chunks.map((c) => new TextDecoder().decode(c)).join("");
}

Deno.test("provider: identity, health, status and metrics endpoints", async () => {
  const f = await fixture();
  try {
    const root = await (await fetch(`${f.provider.url}/`)).json();
    assert.equal(root.name, "phase");
    assert.equal(root.peer_id, f.key.peerId);
    assert.equal(typeof root.uptime_seconds, "number");
    const health = await fetch(`${f.provider.url}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");
    await (await fetch(`${f.provider.url}/stable/x86_64/hello.wasm`))
      .arrayBuffer();
    const status = await (await fetch(`${f.provider.url}/status`)).json();
    assert.equal(status.health.artifacts_readable, true);
    assert.ok(status.metrics.requests_total >= 2);
    assert.ok(status.metrics.bytes_served_total >= example("hello").length);
    const metrics = await (await fetch(`${f.provider.url}/metrics`)).text();
    assert.match(metrics, /^phase_up 1$/m);
    assert.match(
      metrics,
      /^phase_artifact_downloads_total\{artifact="stable\/x86_64\/hello.wasm"\} 1$/m,
    );
    // Unreadable artifacts make /health fail with the reason.
    await Deno.rename(`${f.dir}/artifacts`, `${f.dir}/moved`);
    const sick = await fetch(`${f.provider.url}/health`);
    assert.equal(sick.status, 503);
    assert.match(
      (await sick.json()).reason,
      /artifacts directory .* is not readable/,
    );
    await Deno.rename(`${f.dir}/moved`, `${f.dir}/artifacts`);
    const bad = await fetch(`${f.provider.url}/health`, { method: "DELETE" });
    assert.equal(bad.status, 405);
    assert.equal((await bad.json()).error, "method_not_allowed");
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: signed manifest from the artifacts, arch aliases", async () => {
  const f = await fixture();
  try {
    const manifest = await (await fetch(`${f.provider.url}/manifest.json`))
      .json();
    assert.equal(manifest.channel, "stable");
    assert.equal(manifest.artifacts.kernel.filename, "vmlinuz");
    assert.equal(manifest.artifacts.kernel.sha256, await sha256Hex(f.kernel));
    assert.equal(manifest.artifacts.initramfs.filename, "initramfs.img");
    assert.equal(
      manifest.artifacts["link-out"],
      undefined,
      "a symlink out of the root is listed",
    );
    const verdict = await verifyManifest(manifest, {
      trustedKeys: [f.key.publicKey],
    });
    assert.equal(verdict.valid, true);
    const other = await generateKey();
    assert.equal(
      (await verifyManifest(manifest, { trustedKeys: [other.publicKey] }))
        .valid,
      false,
    );
    const alias =
      await (await fetch(`${f.provider.url}/stable/amd64/manifest.json`))
        .json();
    assert.deepEqual(alias, manifest);
    const aliasFile = await fetch(`${f.provider.url}/stable/amd64/hello.wasm`);
    assert.equal(aliasFile.status, 200);
    assert.deepEqual(
      new Uint8Array(await aliasFile.arrayBuffer()),
      example("hello"),
    );
    const missing = await fetch(
      `${f.provider.url}/nightly/aarch64/manifest.json`,
    );
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).reason, /no artifacts/);
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: manifest_version grows when artifacts change and survives restarts", async () => {
  const f = await fixture();
  try {
    const first = await (await fetch(`${f.provider.url}/manifest.json`)).json();
    await Deno.writeTextFile(
      `${f.dir}/artifacts/stable/x86_64/extra.txt`,
      "more",
    );
    await new Promise((r) => setTimeout(r, 1100));
    const second = await (await fetch(`${f.provider.url}/manifest.json`))
      .json();
    assert.ok(second.manifest_version > first.manifest_version);
    assert.ok(second.artifacts["extra.txt"]);
    await f.provider.close();
    const again = await startProvider({
      artifactsDir: `${f.dir}/artifacts`,
      dataDir: `${f.dir}/data`,
      key: f.key,
      hostname: "127.0.0.1",
      port: 0,
      jobs: null,
    });
    try {
      const third = await (await fetch(`${again.url}/manifest.json`)).json();
      assert.ok(third.manifest_version >= second.manifest_version);
    } finally {
      await again.close();
    }
    f.provider = { ...f.provider, close: () => Promise.resolve() };
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: RFC 9110 ranges and validators", async () => {
  const f = await fixture();
  const url = `${f.provider.url}/stable/x86_64/vmlinuz`;
  const size = f.kernel.length;
  const get = (headers: Record<string, string>, method = "GET") =>
    fetch(url, { headers, method });
  try {
    const full = await get({});
    assert.equal(full.status, 200);
    assert.equal(full.headers.get("accept-ranges"), "bytes");
    assert.equal(
      full.headers.get("x-artifact-hash"),
      `sha256:${await sha256Hex(f.kernel)}`,
    );
    const etag = full.headers.get("etag")!;
    const lastModified = full.headers.get("last-modified")!;
    assert.equal(etag, `"${await sha256Hex(f.kernel)}"`);
    assert.ok(lastModified);
    assert.deepEqual(new Uint8Array(await full.arrayBuffer()), f.kernel);

    const cases: [string, number, number][] = [
      ["bytes=0-99", 0, 99],
      ["bytes=100-", 100, size - 1],
      ["bytes=-100", size - 100, size - 1],
      ["bytes=5-5", 5, 5],
      [`bytes=${size - 10}-${size + 1000}`, size - 10, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await get({ range });
      assert.equal(r.status, 206, range);
      assert.equal(
        r.headers.get("content-range"),
        `bytes ${start}-${end}/${size}`,
      );
      assert.equal(r.headers.get("content-length"), String(end - start + 1));
      assert.deepEqual(
        new Uint8Array(await r.arrayBuffer()),
        f.kernel.slice(start, end + 1),
        range,
      );
    }
    const unsatisfiable = await get({ range: `bytes=${size}-` });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers.get("content-range"), `bytes */${size}`);
    await unsatisfiable.body?.cancel();
    const malformed = await get({ range: "bytes=abc" });
    assert.equal(malformed.status, 200);
    await malformed.body?.cancel();
    const otherUnit = await get({ range: "items=0-1" });
    assert.equal(otherUnit.status, 200);
    await otherUnit.body?.cancel();

    const multi = await get({ range: "bytes=0-9,100-109" });
    assert.equal(multi.status, 206);
    const type = multi.headers.get("content-type")!;
    const boundary = type.match(/^multipart\/byteranges; boundary=(.+)$/)![1];
    const body = new Uint8Array(await multi.arrayBuffer());
    assert.equal(Number(multi.headers.get("content-length")), body.length);
    const bodyText = new TextDecoder("latin1").decode(body);
    const parts = bodyText.split(`--${boundary}`).slice(1, -1);
    assert.equal(parts.length, 2);
    assert.match(parts[0], /content-range: bytes 0-9\//);
    assert.match(parts[1], /content-range: bytes 100-109\//);
    const payload = (p: string) => p.split("\r\n\r\n")[1].replace(/\r\n$/, "");
    assert.equal(
      payload(parts[0]),
      new TextDecoder("latin1").decode(f.kernel.slice(0, 10)),
    );
    assert.equal(
      payload(parts[1]),
      new TextDecoder("latin1").decode(f.kernel.slice(100, 110)),
    );
    assert.equal(bodyText.endsWith(`--${boundary}--\r\n`), true);

    const notModified = await get({ "if-none-match": etag });
    assert.equal(notModified.status, 304);
    const notModifiedDate = await get({ "if-modified-since": lastModified });
    assert.equal(notModifiedDate.status, 304);
    const ifRangeOk = await get({ range: "bytes=0-3", "if-range": etag });
    assert.equal(ifRangeOk.status, 206);
    await ifRangeOk.body?.cancel();
    const ifRangeStale = await get({
      range: "bytes=0-3",
      "if-range": '"stale"',
    });
    assert.equal(ifRangeStale.status, 200);
    await ifRangeStale.body?.cancel();
    const ifRangeDate = await get({
      range: "bytes=0-3",
      "if-range": lastModified,
    });
    assert.equal(ifRangeDate.status, 206);
    await ifRangeDate.body?.cancel();

    const head = await get({}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(size));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    // Range is defined for GET only (RFC 9110 §14.2): HEAD ignores it.
    const headRange = await get({ range: "bytes=0-9" }, "HEAD");
    assert.equal(headRange.status, 200);
    assert.equal(headRange.headers.get("content-length"), String(size));
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: curl -r 0-99 returns exactly those 100 bytes", async () => {
  const f = await fixture();
  try {
    const out = await new Deno.Command("curl", {
      args: [
        "-s",
        "-o",
        `${f.dir}/part`,
        "-w",
        "%{http_code}",
        "-r",
        "0-99",
        `${f.provider.url}/stable/x86_64/vmlinuz`,
      ],
    }).output().catch(() => {
      throw new Error("curl is missing (apt-get install curl)");
    });
    assert.equal(text(out.stdout), "206");
    assert.deepEqual(
      await Deno.readFile(`${f.dir}/part`),
      f.kernel.slice(0, 100),
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: path traversal never serves a byte from outside", async () => {
  const f = await fixture();
  const port = f.provider.port;
  try {
    const attempts = [
      "/stable/x86_64/../../secret.txt",
      "/stable/x86_64/..%2f..%2f..%2fsecret.txt",
      "/%2e%2e/%2e%2e/secret.txt",
      "/stable/x86_64/%2e%2e",
      "/stable/%2e%2e/%2e%2e",
      "/stable/x86_64/%2fetc%2fpasswd",
      "/stable/x86_64/..%5c..%5csecret.txt",
      "/stable/x86_64/..\\..\\secret.txt",
      "/stable/x86_64/hello.wasm%00.txt",
      "/stable/x86_64/link-out",
      "//etc/passwd",
      `/stable/x86_64/${encodeURIComponent(f.dir + "/secret.txt")}`,
      "/stable/x86_64/.%2e/.%2e/secret.txt",
    ];
    for (const path of attempts) {
      const answer = await raw(
        port,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assert.doesNotMatch(answer, new RegExp(SECRET), path);
      assert.doesNotMatch(answer, /root:x:0:0/, path);
      // Either refused, or normalised by the URL parser to a path inside
      // the provider (e.g. `/stable/%2e%2e/%2e%2e` is `/`).
      const refused = /^HTTP\/1\.1 4\d\d /.test(answer);
      assert.ok(
        refused || /"name": "phase"/.test(answer),
        `${path}: ${answer.split("\r\n")[0]}`,
      );
    }
    const absoluteForm = await raw(
      port,
      `GET http://127.0.0.1:${port}/../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.doesNotMatch(absoluteForm, new RegExp(SECRET));
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: malformed requests are refused and the server stays up", async () => {
  const f = await fixture();
  try {
    const garbage = [
      "NONSENSE\r\n\r\n",
      "GET\r\n\r\n",
      "GET /health HTTP/9.9\r\n\r\n",
      `GET /${"a".repeat(70000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    ];
    for (const request of garbage) {
      const answer = await raw(f.provider.port, request);
      assert.doesNotMatch(answer, /^HTTP\/1\.1 2\d\d/, request.slice(0, 30));
    }
    const range = await fetch(`${f.provider.url}/stable/x86_64/vmlinuz`, {
      headers: { range: "bytes=9-1" },
    });
    assert.ok([200, 416].includes(range.status));
    await range.body?.cancel();
    assert.equal((await fetch(`${f.provider.url}/health`)).status, 200);
  } finally {
    await f.cleanup();
  }
});

Deno.test("provider: 200 concurrent connections all succeed", async () => {
  const f = await fixture();
  try {
    const want = await sha256Hex(f.kernel);
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const path = i % 2 ? "/stable/x86_64/vmlinuz" : "/manifest.json";
        const r = await fetch(`${f.provider.url}${path}`);
        const body = new Uint8Array(await r.arrayBuffer());
        return {
          status: r.status,
          ok: i % 2 ? await sha256Hex(body) === want : body.length > 0,
        };
      }),
    );
    assert.equal(results.filter((r) => r.status === 200 && r.ok).length, 200);
  } finally {
    await f.cleanup();
  }
});

Deno.test("fetch: an interrupted download resumes with Range and verifies", async () => {
  const f = await fixture();
  let broken = 0;
  const ranges: string[] = [];
  // A relay that cuts the first response off half-way.
  const relay = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request) => {
    const range = request.headers.get("range");
    ranges.push(range ?? "none");
    const upstream = await fetch(`${f.provider.url}/stable/x86_64/vmlinuz`, {
      headers: range ? { range } : {},
    });
    if (broken > 0) return upstream;
    broken++;
    const reader = upstream.body!.getReader();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done || sent > f.kernel.length / 2) {
          await reader.cancel();
          controller.close(); // shorter than its Content-Length: a cut
          return;
        }
        sent += value.length;
        controller.enqueue(value);
      },
    });
    return new Response(body, { headers: upstream.headers });
  });
  try {
    const output = `${f.dir}/kernel.out`;
    const result = await download({
      urls: [`http://127.0.0.1:${relay.addr.port}/stable/x86_64/vmlinuz`],
      sha256: await sha256Hex(f.kernel),
      output,
    });
    assert.equal(result.resumes, 1);
    assert.deepEqual(await Deno.readFile(output), f.kernel);
    assert.equal(ranges[0], "none");
    assert.match(ranges[1], /^bytes=\d+-$/);
    // A wrong hash leaves nothing behind but the untouched existing files.
    await Deno.writeTextFile(`${f.dir}/keep.txt`, "mine");
    const cliOut = await cli([
      "fetch",
      "--url",
      `${f.provider.url}/stable/x86_64/vmlinuz`,
      "--sha256",
      "0".repeat(64),
      "--output",
      `${f.dir}/keep.txt`,
    ]);
    assert.equal(cliOut.code, 1);
    assert.match(cliOut.stderr, /exists with other contents/);
    assert.equal(await Deno.readTextFile(`${f.dir}/keep.txt`), "mine");
    const wrong = await cli([
      "fetch",
      "--url",
      `${f.provider.url}/stable/x86_64/vmlinuz`,
      "--sha256",
      "0".repeat(64),
      "--output",
      `${f.dir}/wrong.bin`,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /sha256 mismatch/);
    await assert.rejects(Deno.stat(`${f.dir}/wrong.bin`));
    await assert.rejects(Deno.stat(`${f.dir}/wrong.bin.part`));
    const good = await cli([
      "fetch",
      "--url",
      `${f.provider.url}/stable/x86_64/vmlinuz`,
      "--sha256",
      await sha256Hex(f.kernel),
      "--output",
      `${f.dir}/good.bin`,
      "--json",
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).size, f.kernel.length);
  } finally {
    await relay.shutdown();
    await f.cleanup();
  }
});

Deno.test("provider: POST /jobs returns a receipt that phase receipt verify accepts", async () => {
  const f = await fixture({}, {
    limits: {
      maxModuleBytes: 64 * 1024,
      maxMemoryMb: 64,
      maxTimeoutSeconds: 5,
    },
    queueLimit: 0,
  });
  try {
    const response = await fetch(
      `${f.provider.url}/jobs?arg=Hello,%20World!&nonce=${"cd".repeat(16)}`,
      {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: example("hello") as Uint8Array<ArrayBuffer>,
      },
    );
    assert.equal(response.status, 200);
    const receipt = await response.json();
    assert.equal(receipt.stdout, "!dlroW ,olleH\n");
    assert.equal(receipt.node_peer_id, f.key.peerId);
    assert.equal(
      (await verifyReceipt(receipt, { nonce: "cd".repeat(16) })).valid,
      true,
    );
    await Deno.writeTextFile(`${f.dir}/receipt.json`, JSON.stringify(receipt));
    const verified = await cli([
      "receipt",
      "verify",
      `${f.dir}/receipt.json`,
      "--peer",
      f.key.peerId,
    ]);
    assert.equal(verified.code, 0, verified.stderr);
    // By hash, for a module the node serves, with stdin.
    const byHash = await fetch(`${f.provider.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module_hash: receipt.module_hash,
        stdin: btoa("abc"),
      }),
    });
    assert.equal(byHash.status, 200);
    assert.equal((await byHash.json()).stdout, "cba");
    // Errors.
    const post = (body: BodyInit, type: string, query = "") =>
      fetch(`${f.provider.url}/jobs${query}`, {
        method: "POST",
        headers: { "content-type": type },
        body,
      });
    const tooBig = await post(new Uint8Array(65 * 1024), "application/wasm");
    assert.equal(tooBig.status, 413);
    await tooBig.body?.cancel();
    const invalid = await post(
      new TextEncoder().encode("not wasm"),
      "application/wasm",
    );
    assert.equal(invalid.status, 400);
    assert.match((await invalid.json()).reason, /not a WebAssembly module/);
    const badJson = await post("{", "application/json");
    assert.equal(badJson.status, 400);
    await badJson.body?.cancel();
    const badManifest = await post(
      JSON.stringify({ manifest: { version: 1 } }),
      "application/json",
    );
    assert.equal(badManifest.status, 400);
    assert.match((await badManifest.json()).reason, /invalid job manifest/);
    const unknownHash = await post(
      JSON.stringify({ module_hash: `sha256:${"1".repeat(64)}` }),
      "application/json",
    );
    assert.equal(unknownHash.status, 404);
    await unknownHash.body?.cancel();
    const tooMuchMemory = await post(
      example("hello") as Uint8Array<ArrayBuffer>,
      "application/wasm",
      "?memory_mb=1024",
    );
    assert.equal(tooMuchMemory.status, 400);
    await tooMuchMemory.body?.cancel();
    const wrongType = await post("x", "text/plain");
    assert.equal(wrongType.status, 415);
    await wrongType.body?.cancel();
    // Queue full: the only sandbox is busy and the queue holds nothing.
    const busy = post(
      example("infinite_loop") as Uint8Array<ArrayBuffer>,
      "application/wasm",
      "?timeout_seconds=1.5&fuel=1000000000000",
    );
    await new Promise((r) => setTimeout(r, 300));
    const rejected = await post(
      example("hello") as Uint8Array<ArrayBuffer>,
      "application/wasm",
    );
    assert.equal(rejected.status, 503);
    assert.equal(rejected.headers.get("retry-after"), "1");
    await rejected.body?.cancel();
    const loop = await (await busy).json();
    assert.equal(loop.execution.status, "timeout");
    const metered = await (await post(
      example("infinite_loop") as Uint8Array<ArrayBuffer>,
      "application/wasm",
      "?fuel=1000",
    )).json();
    assert.equal(metered.execution.status, "fuel_exhausted");
    assert.equal(metered.limits.fuel, 1000);
    const badFuel = await post("x", "application/wasm", "?fuel=1.5");
    assert.equal(badFuel.status, 400);
    assert.match((await badFuel.json()).reason, /fuel must be integer/);
    const get = await fetch(`${f.provider.url}/jobs`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
  } finally {
    await f.cleanup();
  }
});
