/**
 * Provider benchmark against nginx, both on loopback serving the same files,
 * measured with wrk in the same run:
 * - manifest.json and a 4 KiB artifact: requests/s and p99 latency;
 * - a 256 MiB artifact: throughput;
 * - the provider's resident memory while 8 clients download a 1 GiB artifact;
 * - 1,000 slow clients (request heads that never finish) connected while
 *   others fetch the 4 KiB artifact: their p99 and the provider's memory;
 * - 1,000 slow readers (downloads of the 1 GiB artifact nobody reads), the
 *   same way.
 * Prints ratios provider/nginx; nginx runs with one worker, the provider's
 * own budget of one JavaScript thread; a second ratio is against nginx with
 * one worker per core. The 4 KiB artifact is also compared with a bare
 * Deno.serve answering the same bytes, in interleaved rounds, by requests/s
 * and by requests per CPU-second of each server. Targets: 4 KiB >= 0.9x the
 * bare server, 256 MiB >= 1.0x nginx, RSS flat, p99 under 50 ms with the
 * slow clients connected.
 *
 * Usage: deno run -A bench/provider_bench.ts [--duration 5] [--json]
 * Needs nginx, wrk and curl (apt-get install nginx-light wrk curl).
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    json: { type: "boolean" },
  },
});
const root = new URL("../", import.meta.url).pathname;
const log = (line: string) => values.json || console.log(line);

for (const tool of ["nginx", "wrk", "curl"]) {
  const found = await new Deno.Command("sh", {
    args: ["-c", `command -v ${tool}`],
  }).output();
  if (found.code !== 0) {
    console.error(
      `provider_bench: ${tool} is missing (apt-get install nginx-light wrk curl)`,
    );
    Deno.exit(1);
  }
}

const work = await Deno.makeTempDir({ prefix: "phase-bench-" });
// nginx workers run as an unprivileged user; let them read the files.
await Deno.chmod(work, 0o755);
const files = `${work}/artifacts/stable/x86_64`;
await Deno.mkdir(files, { recursive: true });
async function randomFile(path: string, bytes: number) {
  using file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(1024 * 1024);
  for (let left = bytes; left > 0; left -= chunk.length) {
    for (let i = 0; i < chunk.length; i += 65536) {
      crypto.getRandomValues(chunk.subarray(i, i + 65536));
    }
    await file.write(chunk.subarray(0, Math.min(chunk.length, left)));
  }
}
log("preparing files (4 KiB, 256 MiB, 1 GiB) …");
await randomFile(`${files}/small.bin`, 4096);
await randomFile(`${files}/medium.bin`, 256 * 1024 * 1024);
await randomFile(`${files}/large.bin`, 1024 * 1024 * 1024);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitFor(url: string) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}

// The provider, as `phase serve` runs it.
const providerPort = freePort();
const provider = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    `${root}main.ts`,
    "serve",
    "--artifacts",
    `${work}/artifacts`,
    "--data-dir",
    `${work}/data`,
    "--port",
    String(providerPort),
    "--bind",
    "127.0.0.1",
    "--no-jobs",
  ],
  stdout: "null",
  stderr: "inherit",
}).spawn();
const providerUrl = `http://127.0.0.1:${providerPort}`;
await waitFor(`${providerUrl}/health`);
// nginx serves the same bytes, including the manifest the provider serves.
await Deno.writeFile(
  `${files}/manifest.json`,
  new Uint8Array(
    await (await fetch(`${providerUrl}/manifest.json`)).arrayBuffer(),
  ),
);

async function startNginx(workers: string) {
  const port = freePort();
  const dir = `${work}/nginx-${workers}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `
worker_processes ${workers};
daemon off;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server {
    listen 127.0.0.1:${port};
    root ${work}/artifacts;
    location = /manifest.json { alias ${files}/manifest.json; }
  }
}`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", `${dir}/nginx.conf`, "-p", dir],
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/manifest.json`);
  return { child, url };
}

interface WrkResult {
  requests: number;
  rps: number;
  p99ms: number;
  bytesPerSecond: number;
}

async function wrk(url: string, connections: number): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${connections}`,
      `-d${values.duration}s`,
      "--latency",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const p99 = text.match(/99%\s+([\d.]+)(us|ms|s)/);
  const unit = { us: 0.001, ms: 1, s: 1000 } as Record<string, number>;
  const transfer = text.match(/Transfer\/sec:\s+([\d.]+)([KMG]?B)/);
  const scale = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as Record<
    string,
    number
  >;
  if (!rps || !p99 || !transfer || text.includes("Non-2xx")) {
    throw new Error(`wrk failed on ${url}: ${text}`);
  }
  return {
    requests: Number(text.match(/(\d+) requests in/)?.[1]),
    rps,
    p99ms: Number(p99[1]) * unit[p99[2]],
    bytesPerSecond: Number(transfer[1]) * scale[transfer[2]],
  };
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 (12 and 13 after the name).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Measured extends WrkResult {
  /** Requests answered per CPU-second of the server's process. */
  perCpuSecond: number;
}

/** wrk with 50 connections, and the server's CPU time meanwhile. */
async function measured(pid: number, url: string): Promise<Measured> {
  const before = cpuSeconds(pid);
  const result = await wrk(url, 50);
  const used = cpuSeconds(pid) - before;
  return {
    ...result,
    perCpuSecond: result.requests / used,
  };
}

// The ceiling: bare Deno.serve with the same 4 KiB body and headers.
const barePort = freePort();
const bare = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-read",
    `${root}bench/bare_server.ts`,
    String(barePort),
    `${files}/small.bin`,
  ],
  stderr: "inherit",
}).spawn();
await waitFor(`http://127.0.0.1:${barePort}/`);

const results: Record<string, unknown> = {};
const nginxOne = await startNginx("1");
const nginxAuto = await startNginx("auto");
try {
  for (
    const [label, path, connections] of [
      ["manifest.json", "/manifest.json", 50],
      ["4 KiB artifact", "/stable/x86_64/small.bin", 50],
      ["256 MiB artifact", "/stable/x86_64/medium.bin", 2],
    ] as const
  ) {
    const p = await wrk(`${providerUrl}${path}`, connections);
    const n1 = await wrk(`${nginxOne.url}${path}`, connections);
    const n2 = await wrk(`${nginxAuto.url}${path}`, connections);
    const big = label.startsWith("256");
    const metric = (r: WrkResult) => big ? r.bytesPerSecond / 1024 ** 2 : r.rps;
    const unit = big ? "MiB/s" : "req/s";
    log(
      `${label.padEnd(17)} provider ${metric(p).toFixed(0)} ${unit} (p99 ${
        p.p99ms.toFixed(2)
      } ms) | nginx x1 ${metric(n1).toFixed(0)} (p99 ${
        n1.p99ms.toFixed(2)
      } ms) ratio ${(metric(p) / metric(n1)).toFixed(2)} | nginx auto ${
        metric(n2).toFixed(0)
      } ratio ${(metric(p) / metric(n2)).toFixed(2)}`,
    );
    results[label] = {
      provider: p,
      nginx_1_worker: n1,
      nginx_auto: n2,
      ratio_1_worker: metric(p) / metric(n1),
      ratio_auto: metric(p) / metric(n2),
    };
  }
  // The 4 KiB file against the bare server, interleaved in rounds (this
  // machine is shared: conditions drift between runs far apart). Besides
  // requests/s, each server's CPU time (utime + stime of its process) gives
  // requests per CPU-second, which other load on the machine moves little.
  const rounds: { provider: Measured; bare: Measured }[] = [];
  for (let round = 0; round < 3; round++) {
    rounds.push({
      provider: await measured(
        provider.pid,
        `${providerUrl}/stable/x86_64/small.bin`,
      ),
      bare: await measured(bare.pid, `http://127.0.0.1:${barePort}/`),
    });
  }
  const median = (values: number[]) =>
    values.sort((x, y) => x - y)[Math.floor(values.length / 2)];
  const rpsRatio = median(rounds.map((r) => r.provider.rps / r.bare.rps));
  const cpuRatio = median(
    rounds.map((r) => r.provider.perCpuSecond / r.bare.perCpuSecond),
  );
  const bareRps = median(rounds.map((r) => r.bare.rps));
  const small = results["4 KiB artifact"] as { nginx_1_worker: WrkResult };
  log(
    `bare Deno.serve   ${
      bareRps.toFixed(0)
    } req/s with the same 4 KiB body and headers (${
      (bareRps / small.nginx_1_worker.rps).toFixed(2)
    }x nginx x1); provider/bare, median of 3 interleaved rounds: ${
      rpsRatio.toFixed(2)
    }x req/s, ${cpuRatio.toFixed(2)}x req per CPU-second (target 0.9; rounds: ${
      rounds.map((r) =>
        `${(r.provider.rps / r.bare.rps).toFixed(2)}/${
          (r.provider.perCpuSecond / r.bare.perCpuSecond).toFixed(2)
        }`
      ).join(" ")
    })`,
  );
  results.bare_deno_serve = rounds;
  results.ratio_small_to_bare = rpsRatio;
  results.ratio_small_to_bare_per_cpu = cpuRatio;
} finally {
  bare.kill("SIGTERM");
  await bare.status;
  for (const n of [nginxOne, nginxAuto]) {
    n.child.kill("SIGTERM");
    await n.child.status;
  }
}

// Resident memory while 8 clients fetch 1 GiB.
function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]);
}
const before = rssKiB(provider.pid);
let peak = before;
const clients = Array.from(
  { length: 8 },
  () =>
    new Deno.Command("curl", {
      args: ["-s", "-o", "/dev/null", `${providerUrl}/stable/x86_64/large.bin`],
    }).output(),
);
const sampler = setInterval(
  () => peak = Math.max(peak, rssKiB(provider.pid)),
  50,
);
const started = performance.now();
const done = await Promise.all(clients);
clearInterval(sampler);
const seconds = (performance.now() - started) / 1000;
if (done.some((d) => d.code !== 0)) throw new Error("a 1 GiB download failed");
log(
  `1 GiB x 8 clients: provider RSS ${
    (before / 1024).toFixed(0)
  } MiB before, peak ${(peak / 1024).toFixed(0)} MiB during (${
    (8 / seconds).toFixed(2)
  } GiB/s total)`,
);
results.rss_1gib_8_clients = {
  before_mib: before / 1024,
  peak_mib: peak / 1024,
  seconds,
};

// 1,000 slow clients: connected, each with a request head it never ends.
const slow: Deno.Conn[] = [];
const slowBefore = rssKiB(provider.pid);
for (let i = 0; i < 1000; i++) {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: providerPort,
  });
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
  slow.push(conn);
}
let slowPeak = rssKiB(provider.pid);
const slowSampler = setInterval(
  () => slowPeak = Math.max(slowPeak, rssKiB(provider.pid)),
  50,
);
const underSlow = await wrk(`${providerUrl}/stable/x86_64/small.bin`, 10);
clearInterval(slowSampler);
for (const conn of slow) {
  try {
    conn.close();
  } catch {
    // closed by the provider's header timeout
  }
}
log(
  `1000 slow clients  others: ${underSlow.rps.toFixed(0)} req/s, p99 ${
    underSlow.p99ms.toFixed(2)
  } ms (target < 50) | provider RSS ${
    (slowBefore / 1024).toFixed(0)
  } MiB before, peak ${(slowPeak / 1024).toFixed(0)} MiB`,
);
results.slow_clients_1000 = {
  others: underSlow,
  rss_before_mib: slowBefore / 1024,
  rss_peak_mib: slowPeak / 1024,
};

// 1,000 slow readers: each asks for the 1 GiB file and never reads.
const readers: Deno.Conn[] = [];
const readersBefore = rssKiB(provider.pid);
let readersPeak = readersBefore;
const readersSampler = setInterval(
  () => readersPeak = Math.max(readersPeak, rssKiB(provider.pid)),
  50,
);
for (let i = 0; i < 1000; i++) {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: providerPort,
  });
  await conn.write(
    new TextEncoder().encode(
      "GET /stable/x86_64/large.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
  );
  readers.push(conn);
}
// Filling 1,000 connections' socket buffers (a few MiB each on loopback)
// takes the first seconds; measured after that.
await new Promise((r) => setTimeout(r, 3000));
const underReaders = await wrk(`${providerUrl}/stable/x86_64/small.bin`, 10);
clearInterval(readersSampler);
const stalledClosed = Number(
  (await (await fetch(`${providerUrl}/metrics`)).text())
    .match(/outcome="stalled"\} (\d+)/)?.[1],
);
for (const conn of readers) {
  try {
    conn.close();
  } catch {
    // closed by the provider
  }
}
log(
  `1000 slow readers  others: ${underReaders.rps.toFixed(0)} req/s, p99 ${
    underReaders.p99ms.toFixed(2)
  } ms | provider RSS ${(readersBefore / 1024).toFixed(0)} MiB before, peak ${
    (readersPeak / 1024).toFixed(0)
  } MiB; ${stalledClosed} stalled downloads closed`,
);
results.slow_readers_1000 = {
  others: underReaders,
  rss_before_mib: readersBefore / 1024,
  rss_peak_mib: readersPeak / 1024,
  stalled_closed: stalledClosed,
};

provider.kill("SIGTERM");
await provider.status;
await Deno.remove(work, { recursive: true });
if (values.json) console.log(JSON.stringify(results));
