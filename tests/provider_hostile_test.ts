/**
 * The provider against slow, hostile and unlucky clients, over real
 * sockets; the descriptor and memory tests run `phase serve` as a separate
 * process so its limits and resident memory are its own.
 */
import assert from "node:assert/strict";
import { JobService } from "../node/mod.ts";
import { type Provider, startProvider } from "../provider/mod.ts";
import { generateKey, type NodeKey, sha256Hex } from "../schemas/mod.ts";
import {
  type Announced,
  example,
  ROOT,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An artifacts tree with a sparse file of `bigBytes` and hello.wasm. */
async function artifacts(dir: string, bigBytes = 0): Promise<string> {
  const arch = `${dir}/artifacts/stable/x86_64`;
  await Deno.mkdir(arch, { recursive: true });
  await Deno.writeFile(`${arch}/hello.wasm`, example("hello"));
  await Deno.writeFile(`${arch}/initramfs.img`, encoder.encode("initrd"));
  if (bigBytes) {
    using big = await Deno.open(`${arch}/big.bin`, {
      write: true,
      create: true,
    });
    await big.truncate(bigBytes);
  }
  return `${dir}/artifacts`;
}

async function connect(port: number, text?: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  if (text) await conn.write(encoder.encode(text));
  return conn;
}

/** Reads until the peer closes (true) or `ms` pass (false). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buffer = new Uint8Array(65536);
  const deadline = performance.now() + ms;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    const timer = sleep(left).then(() => "timeout" as const);
    const read = conn.read(buffer).catch(() => null);
    const result = await Promise.race([read, timer]);
    if (result === "timeout") return false;
    if (result === null) return true;
  }
}

/** Reads one whole answer to a `connection: close` request. */
async function answer(port: number, request: string): Promise<string> {
  const conn = await connect(port, request);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
  }
  try {
    conn.close();
  } catch {
    // closed
  }
  return new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((c) => [...c])),
  );
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed by the server
    }
  }
}

async function inProcess(
  dir: string,
  options: Partial<Parameters<typeof startProvider>[0]> = {},
): Promise<{ provider: Provider; key: NodeKey }> {
  const key = await generateKey();
  const provider = await startProvider({
    artifactsDir: `${dir}/artifacts`,
    dataDir: null,
    key,
    hostname: "127.0.0.1",
    port: 0,
    jobs: null,
    ...options,
  });
  return { provider, key };
}

type Served = Announced<{ url: string; port: number }>;

/** `phase serve` in its own process; `shell` runs before it (e.g. ulimit). */
async function serveProcess(
  dir: string,
  extra: string[] = [],
  shell = "true",
): Promise<Served> {
  return await spawnAnnounced(
    "sh",
    {
      args: [
        "-c",
        `${shell} && exec "$0" "$@"`,
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}/main.ts`,
        "serve",
        "--artifacts",
        `${dir}/artifacts`,
        "--data-dir",
        `${dir}/data`,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--no-dht",
        "--json",
        ...extra,
      ],
    },
  );
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

/** Fails when the resident memory of `pid`, sampled for `ms`, grows by `maxMiB` over `before`. */
async function assertRssStaysUnder(
  pid: number,
  before: number,
  maxMiB: number,
  ms: number,
): Promise<void> {
  let peak = before;
  for (let waited = 0; waited < ms; waited += 100) {
    await sleep(100);
    peak = Math.max(peak, rssMiB(pid));
  }
  assert.ok(
    peak - before < maxMiB,
    `RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`,
  );
}

function softFileLimit(pid: number): number {
  const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
  return Number(limits.match(/^Max open files\s+(\d+)/m)![1]);
}

Deno.test("slow clients: header and idle timeouts close slowloris and idle keep-alive", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const { provider } = await inProcess(dir, {
    limits: { headersTimeoutMs: 600, idleTimeoutMs: 600 },
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      conns.push(
        await connect(provider.port, "GET /health HTTP/1.1\r\nHost: x\r\n"),
      );
    }
    // A keep-alive client that got its answer and then says nothing.
    const idle = await connect(
      provider.port,
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    await idle.read(new Uint8Array(65536));
    conns.push(idle);
    // Others are served meanwhile.
    const served = await fetch(`${provider.url}/health`);
    assert.equal(served.status, 200);
    await served.body?.cancel();
    const closed = await Promise.all(conns.map((c) => closedWithin(c, 3000)));
    assert.equal(closed.filter(Boolean).length, 101);
    assert.ok(provider.metrics.connections!.timedOut >= 101);
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

Deno.test("connection limit: idle connections make room, busy ones get 503", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 64 * 1024 * 1024);
  const { provider } = await inProcess(dir, {
    limits: { maxConnections: 8, headersTimeoutMs: 30_000 },
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      conns.push(await connect(provider.port, "GET / HTTP/1.1\r\n"));
    }
    const health = await answer(
      provider.port,
      "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(health, /^HTTP\/1\.1 200 /);
    assert.ok(provider.metrics.connections!.evicted >= 1);
    closeAll(conns.splice(0));
    // Eight downloads nobody reads keep every slot busy.
    for (let i = 0; i < 8; i++) {
      conns.push(
        await connect(
          provider.port,
          "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
      );
    }
    await sleep(300);
    const refused = await answer(
      provider.port,
      "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(refused, /^HTTP\/1\.1 503 /);
    assert.match(refused, /retry-after: 1/i);
    const body = JSON.parse(refused.split("\r\n\r\n")[1]);
    assert.equal(body.error, "unavailable");
    closeAll(conns.splice(0));
    await sleep(300);
    assert.equal((await fetch(`${provider.url}/health`)).status, 200);
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

/** Reads what is left on `conn` until it ends; the bytes read. */
async function drain(conn: Deno.Conn, limit: number): Promise<number> {
  const buffer = new Uint8Array(256 * 1024);
  let received = 0;
  while (received < limit) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    received += n;
  }
  return received;
}

Deno.test("slow readers: a download its client stops reading is cut off; one that reads slowly is not", async () => {
  const [dir, cleanup] = await tempDir();
  const size = 64 * 1024 * 1024;
  await artifacts(dir, size);
  const { provider } = await inProcess(dir, {
    limits: { stallTimeoutMs: 3000 },
  });
  const request = "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
  const stalled = await connect(provider.port, request);
  const slow = await connect(provider.port, request);
  try {
    // The slow reader takes up to 1 MiB every 100 ms (what the kernel holds
    // for it lasts under a second): progress, never a stall.
    const buffer = new Uint8Array(1024 * 1024);
    let slowBytes = 0;
    for (let i = 0; i < 60; i++) {
      await sleep(100);
      slowBytes += await slow.read(buffer) ?? 0;
    }
    // The other one has read nothing for 6 s: its answer was abandoned,
    // so what is left to read is what the kernel already held.
    const got = await drain(stalled, size);
    assert.ok(got < size / 2, `the stalled reader still got ${got} bytes`);
    assert.ok(provider.metrics.connections!.stalled >= 1);
    // The slow one gets the whole file (its head included, over `size`).
    const rest = await drain(slow, size - slowBytes);
    assert.ok(
      slowBytes + rest >= size,
      `the slow reader got ${slowBytes + rest}`,
    );
  } finally {
    closeAll([stalled, slow]);
    await provider.close();
    await cleanup();
  }
});

Deno.test("slow readers: at the connection limit, a stalled download makes room", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 64 * 1024 * 1024);
  const { provider } = await inProcess(dir, {
    limits: { maxConnections: 4, stallTimeoutMs: 60_000 },
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      conns.push(
        await connect(
          provider.port,
          "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
      );
    }
    // Once they have been unread for over a second (filling their socket
    // buffers first takes a moment on a loaded machine), a new client gets
    // in; before, it may get 503.
    let health = "";
    for (
      let tries = 0;
      tries < 8 && !health.startsWith("HTTP/1.1 200");
      tries++
    ) {
      await sleep(1000);
      health = await answer(
        provider.port,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
    }
    assert.match(health, /^HTTP\/1\.1 200 /);
    assert.ok(provider.metrics.connections!.evicted >= 1);
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

/** One HTTP/2 frame. */
function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array,
): Uint8Array {
  const frame = new Uint8Array(9 + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length << 8);
  frame[3] = type;
  frame[4] = flags;
  view.setUint32(5, stream);
  frame.set(payload, 9);
  return frame;
}

/**
 * A cleartext HTTP/2 (prior knowledge) connection that opens `streams` GETs
 * of `path` and reads none of them: its initial window is 0, so no response
 * body can move.
 */
async function h2Unread(
  port: number,
  path: string,
  streams: number,
): Promise<Deno.TcpConn> {
  const conn = await connect(port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  // SETTINGS: INITIAL_WINDOW_SIZE (4) = 0.
  await conn.write(h2Frame(0x4, 0, 0, new Uint8Array([0, 4, 0, 0, 0, 0])));
  const literal = (index: number, value: string) => [
    index,
    value.length,
    ...encoder.encode(value),
  ];
  // HPACK: :method GET, :scheme http, then :path and :authority as literals.
  const block = new Uint8Array([
    0x82,
    0x86,
    ...literal(0x04, path),
    ...literal(0x01, "x"),
  ]);
  for (let i = 0; i < streams; i++) {
    // HEADERS with END_STREAM | END_HEADERS on odd stream ids.
    await conn.write(h2Frame(0x1, 0x5, 2 * i + 1, block));
  }
  return conn;
}

Deno.test("HTTP/2: unread cleartext streams are capped per connection and cut off when stalled", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 64 * 1024 * 1024);
  const { provider } = await inProcess(dir, {
    limits: { maxStreamsPerConnection: 8, stallTimeoutMs: 1000 },
  });
  const conns: Deno.Conn[] = [];
  try {
    // Far over the cap: refused, and the connection closed at once.
    const flood = await h2Unread(provider.port, "/stable/x86_64/big.bin", 40);
    conns.push(flood);
    const floodClosed = await closedWithin(flood, 800);
    assert.ok(floodClosed, "the flooding connection stayed open");
    assert.ok(provider.metrics.connections!.streamsRefused >= 1);
    // At the cap, unread: cut off by the stall timeout.
    const unread = await h2Unread(provider.port, "/stable/x86_64/big.bin", 8);
    conns.push(unread);
    assert.ok(
      await closedWithin(unread, 4000),
      "the stalled connection stayed open",
    );
    assert.ok(provider.metrics.connections!.stalled >= 1);
    const health = await fetch(`${provider.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

Deno.test("memory: fast concurrent downloads leave no garbage behind", async () => {
  const [dir, cleanup] = await tempDir();
  const root = await artifacts(dir, 512 * 1024 * 1024);
  const random = new Uint8Array(48 * 1024 * 1024);
  for (let i = 0; i < random.length; i += 65536) {
    crypto.getRandomValues(random.subarray(i, i + 65536));
  }
  await Deno.writeFile(`${root}/stable/x86_64/random.bin`, random);
  const served = await serveProcess(dir, ["--no-jobs"]);
  try {
    const pid = served.child.pid;
    const url = `http://127.0.0.1:${served.info.port}/stable/x86_64/big.bin`;
    await (await fetch(url, { method: "HEAD" })).body?.cancel(); // hashed
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => peak = Math.max(peak, rssMiB(pid)), 50);
    const downloads = await Promise.all(
      Array.from({ length: 8 }, () =>
        new Deno.Command("curl", {
          args: ["-sf", "-o", "/dev/null", "-w", "%{size_download}", url],
          stdout: "piped",
        }).output()),
    );
    clearInterval(sampler);
    for (const d of downloads) {
      assert.equal(
        new TextDecoder().decode(d.stdout),
        String(512 * 1024 * 1024),
      );
    }
    assert.ok(
      peak - before < 48,
      `RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`,
    );
    // Chunks are let go of as soon as the engine has them: what arrives is
    // still the file, byte for byte.
    const random =
      `http://127.0.0.1:${served.info.port}/stable/x86_64/random.bin`;
    const head = await fetch(random, { method: "HEAD" });
    await head.body?.cancel();
    const sums = await Promise.all(
      Array.from({ length: 8 }, () =>
        new Deno.Command("sh", {
          args: ["-c", `curl -sf "${random}" | sha256sum`],
          stdout: "piped",
        }).output()),
    );
    for (const sum of sums) {
      assert.equal(
        `sha256:${new TextDecoder().decode(sum.stdout).split(" ")[0]}`,
        head.headers.get("x-artifact-hash"),
      );
    }
  } finally {
    await stopAnnounced(served);
    await cleanup();
  }
});

Deno.test("memory: at most maxStalledResponses downloads nobody reads are kept", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 64 * 1024 * 1024);
  const { provider } = await inProcess(dir, {
    limits: { maxStalledResponses: 16 },
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      conns.push(
        await connect(
          provider.port,
          "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
      );
    }
    const stats = provider.metrics.connections!;
    for (let waited = 0; waited < 8000 && stats.stalled < 84; waited += 250) {
      await sleep(250);
    }
    assert.ok(stats.stalled >= 84, JSON.stringify(stats));
    assert.ok(stats.open <= 16, JSON.stringify(stats));
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

Deno.test("descriptors: a provider under ulimit -n 256 survives 600 connections, and EMFILE", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const low = await serveProcess(dir, ["--no-jobs"], "ulimit -n 256");
  const conns: Deno.Conn[] = [];
  try {
    const { port, url } = low.info;
    assert.equal(softFileLimit(low.child.pid), 256);
    for (let i = 0; i < 600; i++) {
      conns.push(await connect(port, "GET /health HTTP/1.1\r\nHost: x\r\n"));
    }
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      /phase_http_connections_total\{outcome="evicted"\} [1-9]/,
    );
    closeAll(conns.splice(0));

    // Descriptors taken away after start: accept fails with EMFILE, the
    // process lives on and serves again once clients leave.
    const out = await new Deno.Command("prlimit", {
      args: ["--pid", String(low.child.pid), "--nofile=64:256"],
    }).output();
    assert.ok(out.success, "prlimit is missing (apt-get install util-linux)");
    for (let i = 0; i < 200; i++) {
      conns.push(await connect(port, "GET /health HTTP/1.1\r\nHost: x\r\n"));
    }
    await sleep(500);
    closeAll(conns.splice(0));
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      await sleep(200);
      ok = await fetch(`${url}/health`).then(async (r) => {
        await r.body?.cancel();
        return r.status === 200;
      }, () => false);
    }
    assert.ok(ok, "the provider did not serve again");
    const after = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      after,
      /phase_http_connections_total\{outcome="accept_error"\} [1-9]/,
    );
  } finally {
    closeAll(conns);
    const { status } = await stopAnnounced(low);
    await cleanup();
    assert.ok(status.code === 0 || status.signal === "SIGTERM");
  }
});

Deno.test("descriptors: the soft open-file limit is raised to the hard one at start", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const hard = Number(
    new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", "ulimit -Hn"] }).output())
        .stdout,
    ),
  );
  const served = await serveProcess(dir, ["--no-jobs"], "ulimit -Sn 256");
  try {
    assert.equal(softFileLimit(served.child.pid), Math.min(hard, 1 << 20));
  } finally {
    await stopAnnounced(served);
    await cleanup();
  }
});

Deno.test("memory: unread multi-range answers stay out of memory", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 96 * 1000 * 1000);
  const served = await serveProcess(dir, ["--no-jobs"]);
  const conns: Deno.Conn[] = [];
  try {
    const pid = served.child.pid;
    const before = rssMiB(pid);
    for (let i = 0; i < 5; i++) {
      conns.push(
        await connect(
          served.info.port,
          "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n" +
            "Range: bytes=0-47999999,48000000-95999999\r\n\r\n",
        ),
      );
    }
    await conns[0].read(new Uint8Array(1024)); // answers have started
    await assertRssStaysUnder(pid, before, 64, 2000);
  } finally {
    closeAll(conns);
    await stopAnnounced(served);
    await cleanup();
  }
});

Deno.test("memory: held-open uploads are admitted before their bodies are read", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const served = await serveProcess(dir);
  const conns: Deno.Conn[] = [];
  try {
    const pid = served.child.pid;
    const before = rssMiB(pid);
    const size = 16 * 1024 * 1024;
    const head = "POST /jobs HTTP/1.1\r\nHost: x\r\n" +
      `Content-Type: application/wasm\r\nContent-Length: ${size}\r\n\r\n`;
    const chunk = new Uint8Array(size - 1); // all but the last byte
    const sending: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const conn = await connect(served.info.port, head);
      conns.push(conn);
      sending.push(conn.write(chunk).catch(() => 0));
    }
    await Promise.race([Promise.allSettled(sending), sleep(3000)]);
    await assertRssStaysUnder(pid, before, 128, 1000);
    // The last upload was over its client's share of places: it was told
    // so at once, without its body being read.
    const last = conns[conns.length - 1];
    const buffer = new Uint8Array(4096);
    const n = await Promise.race([
      last.read(buffer).catch(() => null),
      sleep(5000).then(() => null),
    ]);
    const refusal = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    assert.match(refusal, /^HTTP\/1\.1 (503|429) /);
    assert.match(refusal, /"error":"(unavailable|too_many_requests)"/);
  } finally {
    closeAll(conns);
    await stopAnnounced(served);
    await cleanup();
  }
});

Deno.test("jobs: a job whose client left does not run", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const service = new JobService({
    key: await generateKey(),
    arch: "x86_64",
    sandboxSize: 1,
    queueLimit: 32,
  });
  const { provider } = await inProcess(dir, { jobs: service });
  try {
    const loop = example("infinite_loop") as Uint8Array<ArrayBuffer>;
    const leaving = Array.from({ length: 10 }, async () => {
      const controller = new AbortController();
      const request = fetch(
        `${provider.url}/jobs?timeout_seconds=2&fuel=1000000000000`,
        {
          method: "POST",
          headers: { "content-type": "application/wasm" },
          body: loop,
          signal: controller.signal,
        },
      ).catch(() => null);
      await sleep(300);
      controller.abort();
      await request;
    });
    await Promise.all(leaving);
    const started = performance.now();
    const hello = await fetch(`${provider.url}/jobs?arg=hi`, {
      method: "POST",
      headers: { "content-type": "application/wasm" },
      body: example("hello") as Uint8Array<ArrayBuffer>,
    });
    assert.equal((await hello.json()).stdout, "ih\n");
    const waited = performance.now() - started;
    // At most the one abandoned job already running finishes first.
    assert.ok(waited < 5000, `hello waited ${waited.toFixed(0)} ms`);
    assert.ok(
      (service.counters.completed.timeout ?? 0) <= 2,
      JSON.stringify(service.counters),
    );
  } finally {
    await provider.close();
    await service.close();
    await cleanup();
  }
});

Deno.test("jobs: compressed bodies get 415; with Expect: 100-continue a refused job gets its final answer without its body", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const service = new JobService({
    key: await generateKey(),
    arch: "x86_64",
    sandboxSize: 1,
    queueLimit: 0,
  });
  const { provider } = await inProcess(dir, { jobs: service });
  const post = (headers: string) =>
    "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n" +
    headers + "\r\n";
  /**
   * What the provider sends to a request whose body is never sent, until it
   * closes the connection (within 3 s).
   */
  const firstAnswer = async (request: string) => {
    const conn = await connect(provider.port, request);
    const buffer = new Uint8Array(4096);
    let text = "";
    try {
      const deadline = sleep(3000).then(() => null);
      for (;;) {
        const n = await Promise.race([
          conn.read(buffer).catch(() => null),
          deadline,
        ]);
        if (n === null) return text;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } finally {
      closeAll([conn]);
    }
  };
  /**
   * Deno's HTTP engine answers `100 Continue` as soon as a head with
   * `Expect: 100-continue` arrives, before the provider sees the request
   * (docs/threat-model.md); what follows must be the final answer, and the
   * connection closed without the body being read.
   */
  const finalAnswer = (text: string) =>
    text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, "");
  try {
    // Any content-coding is refused before the body is read, in our shape.
    for (const coding of ["gzip", "br", "deflate, gzip", "x-unknown"]) {
      const answer = await firstAnswer(
        post(`Content-Encoding: ${coding}\r\nContent-Length: 10\r\n`),
      );
      assert.match(answer, /^HTTP\/1\.1 415 /, coding);
      const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
      assert.equal(body.error, "unsupported_media_type");
      assert.match(body.reason, /Content-Encoding/);
    }
    // Too large by its Content-Length: the final answer at once, and the
    // connection closed (firstAnswer returns before its 3 s).
    const sent = performance.now();
    const tooBig = finalAnswer(
      await firstAnswer(
        post("Content-Length: 999999999\r\nExpect: 100-continue\r\n"),
      ),
    );
    assert.match(tooBig, /^HTTP\/1\.1 413 /);
    assert.match(tooBig, /connection: close/i);
    assert.match(tooBig, /"error":"payload_too_large"/);
    assert.ok(performance.now() - sent < 2500, "the connection stayed open");
    // Admissible: 100 Continue, then the job's answer once the body is sent.
    const conn = await connect(
      provider.port,
      post(
        `Content-Length: ${
          example("hello").length
        }\r\nExpect: 100-continue\r\nConnection: close\r\n`,
      ),
    );
    const buffer = new Uint8Array(65536);
    const n = await conn.read(buffer);
    assert.match(
      new TextDecoder().decode(buffer.subarray(0, n!)),
      /^HTTP\/1\.1 100 Continue\r\n/,
    );
    await conn.write(example("hello"));
    let answered = "";
    for (;;) {
      const m = await conn.read(buffer).catch(() => null);
      if (m === null) break;
      answered += new TextDecoder().decode(buffer.subarray(0, m));
    }
    closeAll([conn]);
    assert.match(answered, /^HTTP\/1\.1 200 /);
    // The only place is taken: the final 503 at once, never 100 Continue.
    const busy = fetch(
      `${provider.url}/jobs?timeout_seconds=2&fuel=1000000000000`,
      {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: example("infinite_loop") as Uint8Array<ArrayBuffer>,
      },
    );
    await sleep(300);
    const full = finalAnswer(
      await firstAnswer(
        post("Content-Length: 1000\r\nExpect: 100-continue\r\n"),
      ),
    );
    assert.match(full, /^HTTP\/1\.1 503 /);
    assert.match(full, /retry-after: 1/i);
    await (await busy).body?.cancel();
  } finally {
    await provider.close();
    await service.close();
    await cleanup();
  }
});

Deno.test("engine refusals: oversized heads and broken chunked bodies end cleanly, and the provider goes on", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const service = new JobService({
    key: await generateKey(),
    arch: "x86_64",
    sandboxSize: 1,
  });
  const { provider } = await inProcess(dir, { jobs: service });
  try {
    // Deno's engine refuses these before the provider sees a request
    // (docs/threat-model.md): a bare 400 and a closed connection.
    for (
      const head of [
        `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${
          "a".repeat(70_000)
        }\r\n\r\n`,
        `GET /health HTTP/1.1\r\nHost: x\r\n${
          Array.from({ length: 200 }, (_, i) => `X-${i}: 1\r\n`).join("")
        }\r\n`,
        "GET /health HTTP/9\r\n\r\n",
      ]
    ) {
      const text = await answer(provider.port, head);
      assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(text, /connection: close/i);
    }
    // A chunked body whose broken framing arrives with its head ends the
    // connection inside the engine (it reads ahead before the provider sees
    // the request), before any answer can be written; many in a row.
    for (let i = 0; i < 50; i++) {
      const text = await answer(
        provider.port,
        "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n" +
          "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      );
      assert.doesNotMatch(text, /^HTTP\/1\.1 [235]/);
    }
    // Broken framing that arrives while the provider reads the body gets
    // the provider's own answer.
    const late = await connect(
      provider.port,
      "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n4\r\n\0asm\r\n",
    );
    await sleep(200);
    await late.write(encoder.encode("zz\r\n"));
    const lateAnswer = new Uint8Array(4096);
    const n = await late.read(lateAnswer);
    closeAll([late]);
    const text = new TextDecoder().decode(lateAnswer.subarray(0, n!));
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.equal(
      JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).error,
      "bad_request",
    );
    const health = await fetch(`${provider.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    // A well-formed chunked body is read as usual.
    const module = example("hello");
    const conn = await connect(
      provider.port,
      "POST /jobs?arg=ok HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n" +
        `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${
          module.length.toString(16)
        }\r\n`,
    );
    await conn.write(module);
    await conn.write(encoder.encode("\r\n0\r\n\r\n"));
    const buffer = new Uint8Array(65536);
    let ok = "";
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      ok += new TextDecoder().decode(buffer.subarray(0, n));
    }
    closeAll([conn]);
    assert.match(ok, /^HTTP\/1\.1 200 /);
  } finally {
    await provider.close();
    await service.close();
    await cleanup();
  }
});

Deno.test("host: routing ignores Host, an invalid Host is 400", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir);
  const { provider } = await inProcess(dir);
  try {
    const port = provider.port;
    const tricked = await answer(
      port,
      `GET /stable/x86_64/initramfs.img HTTP/1.1\r\nHost: 127.0.0.1:${port}/stable/x86_64/hello.wasm?\r\nConnection: close\r\n\r\n`,
    );
    assert.match(tricked, /^HTTP\/1\.1 400 /, "a Host with a path is invalid");
    const plain = await answer(
      port,
      `GET /stable/x86_64/initramfs.img HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(plain.endsWith("\r\n\r\ninitrd"), plain.slice(0, 200));
    for (const host of ["a b", "[::1", "x:99999", "h#f"]) {
      const r = await answer(
        port,
        `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(r, /^HTTP\/1\.1 400 /, host);
      assert.match(r, /"error":"bad_request"/, host);
    }
  } finally {
    await provider.close();
    await cleanup();
  }
});

Deno.test("stale content: cp -p with the same size and mtime is noticed, also after a restart", async () => {
  const [dir, cleanup] = await tempDir();
  const root = await artifacts(dir);
  await Deno.mkdir(`${dir}/data`);
  const arch = `${root}/stable/x86_64`;
  const big = (fill: number) => new Uint8Array(200 * 1024).fill(fill);
  const small = (fill: number) => new Uint8Array(1000).fill(fill);
  await Deno.writeFile(`${arch}/kernel.bin`, big(1));
  await Deno.writeFile(`${arch}/small.bin`, small(1));
  const key = await generateKey();
  const start = () =>
    startProvider({
      artifactsDir: root,
      dataDir: `${dir}/data`,
      key,
      hostname: "127.0.0.1",
      port: 0,
      jobs: null,
    });
  /** Replaces the bytes keeping size and mtime, as `cp -p` does. */
  const replace = async (name: string, bytes: Uint8Array) => {
    const { mtime } = await Deno.stat(`${arch}/${name}`);
    await Deno.writeFile(`${arch}/${name}`, bytes);
    await Deno.utime(`${arch}/${name}`, mtime!, mtime!);
  };
  const look = async (base: string) => {
    const kernel = await fetch(`${base}/stable/x86_64/kernel.bin`);
    const smallFile = await fetch(`${base}/stable/x86_64/small.bin`);
    const manifest = await (await fetch(`${base}/manifest.json`)).json();
    return {
      etag: kernel.headers.get("etag"),
      hash: kernel.headers.get("x-artifact-hash"),
      kernel: await sha256Hex(new Uint8Array(await kernel.arrayBuffer())),
      small: new Uint8Array(await smallFile.arrayBuffer())[0],
      listed: manifest.artifacts.kernel.sha256,
    };
  };
  let provider = await start();
  try {
    await sleep(1100); // past the one-second ctime resolution
    const first = await look(provider.url);
    assert.equal(first.small, 1);
    await sleep(1100);
    await replace("kernel.bin", big(2));
    await replace("small.bin", small(2));
    await sleep(1100); // past the resolve and manifest rescan interval
    const second = await look(provider.url);
    const want = await sha256Hex(big(2));
    assert.equal(second.kernel, want);
    assert.equal(second.etag, `"${want}"`);
    assert.equal(second.hash, `sha256:${want}`);
    assert.equal(second.listed, want);
    assert.equal(second.small, 2);
    // Replaced while stopped: the persisted hashes must not be reused.
    await provider.close();
    await sleep(1100);
    await replace("kernel.bin", big(3));
    await Deno.remove(`${arch}/small.bin`);
    await sleep(1100); // so that the new hash is settled and saved
    provider = await start();
    const gone = await fetch(`${provider.url}/stable/x86_64/small.bin`);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    const kernel = await fetch(`${provider.url}/stable/x86_64/kernel.bin`);
    await kernel.body?.cancel();
    assert.equal(kernel.headers.get("etag"), `"${await sha256Hex(big(3))}"`);
    const cache = JSON.parse(
      await Deno.readTextFile(`${dir}/data/hash-cache.json`),
    );
    assert.ok(
      Object.keys(cache).every((path) => !path.endsWith("/small.bin")),
      "the deleted file's hash was not pruned",
    );
  } finally {
    await provider.close();
    await cleanup();
  }
});

/** What {@link readFilled} has read of one answer. */
interface Filled {
  head: string;
  /** Content-Length, once the head is read. */
  length: number;
  /** Body bytes read. */
  body: number;
  /** Body bytes that differ from the expected fill. */
  foreign: number;
}

/**
 * Reads one answer on `conn` (its head, then its body) until `upTo` body
 * bytes are read, the body ends or the connection does.
 */
async function readFilled(
  conn: Deno.Conn,
  fill: number,
  upTo: number,
  state: Filled = { head: "", length: -1, body: 0, foreign: 0 },
): Promise<Filled> {
  const buffer = new Uint8Array(1024 * 1024);
  while (state.body < upTo && (state.length < 0 || state.body < state.length)) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    let chunk = buffer.subarray(0, n);
    if (state.length < 0) {
      state.head += new TextDecoder("latin1").decode(chunk);
      const end = state.head.indexOf("\r\n\r\n");
      if (end < 0) continue;
      state.length = Number(state.head.match(/content-length: (\d+)/i)![1]);
      chunk = chunk.subarray(chunk.length - (state.head.length - end - 4));
    }
    for (const byte of chunk) if (byte !== fill) state.foreign++;
    state.body += chunk.length;
  }
  return state;
}

Deno.test("stale content: a file rewritten during a download never completes under the old ETag", async () => {
  const [dir, cleanup] = await tempDir();
  const root = await artifacts(dir);
  const arch = `${root}/stable/x86_64`;
  const size = 48 * 1024 * 1024;
  const filled = (fill: number) => new Uint8Array(size).fill(fill);
  await Deno.writeFile(`${arch}/big.bin`, filled(1));
  await Deno.writeFile(`${dir}/three.bin`, filled(3));
  const { mtime } = await Deno.stat(`${arch}/big.bin`);
  const { provider } = await inProcess(dir);
  const request = "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
  const conns: Deno.Conn[] = [];
  try {
    await sleep(1100); // past the one-second ctime resolution
    // Rewritten in place after 4 MiB were read: same inode, size and mtime,
    // as `cp -p` leaves it (without the truncation that can make the reads
    // end early instead).
    let conn = await connect(provider.port, request);
    conns.push(conn);
    const begun = await readFilled(conn, 1, 4 * 1024 * 1024);
    assert.equal(begun.length, size);
    assert.equal(begun.foreign, 0);
    {
      using file = await Deno.open(`${arch}/big.bin`, { write: true });
      await file.write(filled(2));
    }
    await Deno.utime(`${arch}/big.bin`, mtime!, mtime!);
    const rest = await readFilled(conn, 1, size, begun);
    assert.ok(
      rest.body < size,
      `a download whose file was rewritten completed (${rest.foreign} bytes of the new file in it)`,
    );
    // Replaced by rename: the download that began goes on with the bytes
    // its ETag names, from the file it opened.
    await sleep(1100);
    conn = await connect(provider.port, request);
    conns.push(conn);
    const second = await readFilled(conn, 2, 4 * 1024 * 1024);
    assert.equal(second.foreign, 0);
    await Deno.rename(`${dir}/three.bin`, `${arch}/big.bin`);
    const whole = await readFilled(conn, 2, size, second);
    assert.equal(whole.body, size);
    assert.equal(whole.foreign, 0);
  } finally {
    closeAll(conns);
    await provider.close();
    await cleanup();
  }
});

Deno.test("manifest_version stays the same across restarts with unchanged artifacts", async () => {
  const [dir, cleanup] = await tempDir();
  const root = await artifacts(dir);
  await Deno.mkdir(`${dir}/data`);
  const key = await generateKey();
  // The same address each time: it is part of the manifest.
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = free.addr.port;
  free.close();
  const versionAfterStart = async () => {
    const provider = await startProvider({
      artifactsDir: root,
      dataDir: `${dir}/data`,
      key,
      hostname: "127.0.0.1",
      port,
      jobs: null,
    });
    try {
      const manifest = await (await fetch(`${provider.url}/manifest.json`))
        .json();
      return manifest.manifest_version as number;
    } finally {
      await provider.close();
    }
  };
  try {
    const first = await versionAfterStart();
    await sleep(1100); // a clock-based version would move
    assert.equal(await versionAfterStart(), first);
    await Deno.writeTextFile(`${root}/stable/x86_64/extra.txt`, "new");
    assert.ok(await versionAfterStart() > first);
  } finally {
    await cleanup();
  }
});

Deno.test("metrics: an abandoned download counts the bytes written, not the file", async () => {
  const [dir, cleanup] = await tempDir();
  await artifacts(dir, 256 * 1024 * 1024);
  const { provider } = await inProcess(dir);
  try {
    const conn = await connect(
      provider.port,
      "GET /stable/x86_64/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let received = 0;
    const buffer = new Uint8Array(65536);
    while (received < 4 * 1024 * 1024) {
      const n = await conn.read(buffer);
      if (n === null) break;
      received += n;
    }
    conn.close();
    await sleep(500);
    const served = provider.metrics.bytesServed;
    assert.ok(served >= received - 65536, `${served} < ${received}`);
    assert.ok(
      served < received + 32 * 1024 * 1024,
      `${served} bytes counted for ${received} received`,
    );
  } finally {
    await provider.close();
    await cleanup();
  }
});
