/**
 * Discovery and remote execution benchmark (one run, loopback):
 * - time for a fresh client to discover capable nodes in a 30-node swarm
 *   (target <= 1 s);
 * - remote hello round trip over an existing connection, p50/p99 (target
 *   p50 <= 5 ms): offer, accept, request, run in the sandbox, signed result,
 *   verification by the client;
 * - the same through the SDK (PhaseClient.run over p2p; target: within
 *   1 ms of the CLI's path), and the cost of `replicas: 3` (nodes found
 *   once, then reused) against one pinned run;
 * - resident memory per node.
 *
 * Usage: deno run -A bench/p2p_bench.ts [--nodes 30] [--jobs 300] [--json]
 */
import { parseArgs } from "node:util";
import {
  acceptJobs,
  type Capability,
  PhaseNode,
  submitJob,
} from "../discovery/mod.ts";
import { RUNTIME_VERSION } from "../runner/mod.ts";
import { JobService } from "../node/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { PhaseClient } from "../sdk/mod.ts";
import { p2pTransportOn } from "../sdk/p2p.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "30" },
    jobs: { type: "string", default: "300" },
    json: { type: "boolean" },
  },
});
const count = Number(values.nodes);
const log = (line: string) => values.json || console.log(line);
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) =>
    a - b
  )[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const rss = () => Deno.memoryUsage().rss;
const capability = (): Capability => ({
  arch: "x86_64",
  cpu_cores: 2,
  memory_mb: 512,
  runtime: { name: "phase-deno", version: RUNTIME_VERSION, wasi: "preview1" },
  limits: { max_timeout_seconds: 60, max_module_bytes: 16 << 20 },
  load: { queued: 0, queue_limit: 64 },
});

const services: JobService[] = [];
const before = rss();
const nodes: PhaseNode[] = [];
for (let i = 0; i < count; i++) {
  const key = await generateKey();
  const capable = i % 6 === 5;
  const node = await PhaseNode.start({
    key,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: nodes.length
      ? [nodes[Math.floor(Math.random() * nodes.length)].multiaddrs()[0]]
      : [],
    capability: capable ? capability : undefined,
  });
  if (capable) {
    // Sandbox processes start on a node's first job.
    const jobs = new JobService({ key, arch: "x86_64", sandboxSize: 1 });
    services.push(jobs);
    await acceptJobs(node, {
      key,
      arch: "x86_64",
      dataDir: null,
      jobs,
      capability,
    });
  }
  nodes.push(node);
}
const perNode = (rss() - before) / count / 1024 / 1024;
await new Promise((r) => setTimeout(r, 1000)); // let re-publication settle
const capableCount = nodes.filter((_, i) => i % 6 === 5).length;

const joinTimes: number[] = [];
const firstTimes: number[] = [];
const allTimes: number[] = [];
let found = 0;
for (let round = 0; round < 5; round++) {
  const started = performance.now();
  const client = await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: [nodes[Math.floor(Math.random() * count)].multiaddrs()[0]],
    clientMode: true,
  });
  const joined = performance.now();
  joinTimes.push(joined - started);
  const first = await client.findCapable({ arch: "x86_64", limit: 1 }, 5000);
  if (first.length === 0) throw new Error("no capable node found");
  firstTimes.push(performance.now() - started);
  const all = await client.findCapable({ arch: "x86_64" }, 5000);
  allTimes.push(performance.now() - started - firstTimes.at(-1)!);
  found = Math.max(found, all.length);
  await client.stop();
}
const median = (xs: number[]) => percentile(xs, 0.5).toFixed(0);
log(
  `discovery in a ${count}-node swarm (5 fresh clients): first capable node ${
    median(firstTimes)
  } ms median (max ${
    Math.max(...firstTimes).toFixed(0)
  } ms) from the client's start, of which joining ${
    median(joinTimes)
  } ms; listing all ${found}/${capableCount} capable nodes ${
    median(allTimes)
  } ms more`,
);

const target = nodes[5];
const client = await PhaseNode.start({
  key: await generateKey(),
  listen: ["/ip4/127.0.0.1/tcp/0"],
  bootstrap: [target.multiaddrs()[0]],
  clientMode: true,
});
const module = Deno.readFileSync(
  new URL("../examples/wasm/hello.wasm", import.meta.url),
);
for (let i = 0; i < 20; i++) {
  await submitJob(client, target.peerId, { module, args: ["warm"] });
}
// The CLI's path (submitJob, as `phase submit` runs it) and the SDK's
// (PhaseClient.run over the p2p transport: the same exchange, then the
// receipt verified again), interleaved in the same rounds.
const sdk = new PhaseClient({ transport: p2pTransportOn(client) });
const pinned = { peerId: target.peerId };
for (let i = 0; i < 20; i++) {
  await sdk.run({ module, args: ["warm"] }, { node: pinned });
}
const latencies: number[] = [];
const sdkLatencies: number[] = [];
for (let i = 0; i < Number(values.jobs); i++) {
  let started = performance.now();
  const result = await submitJob(client, target.peerId, {
    module,
    args: ["Hello, World!"],
  });
  latencies.push(performance.now() - started);
  if (result.stdout !== "!dlroW ,olleH\n") throw new Error("wrong output");
  started = performance.now();
  const viaSdk = await sdk.run({ module, args: ["Hello, World!"] }, {
    node: pinned,
  });
  sdkLatencies.push(performance.now() - started);
  if (viaSdk.stdout !== "!dlroW ,olleH\n") throw new Error("wrong output");
}
const p50 = percentile(latencies, 0.5);
const sdkP50 = percentile(sdkLatencies, 0.5);
log(
  `remote hello round trip (existing connection, ${values.jobs} jobs): p50 ${
    p50.toFixed(2)
  } ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms (CLI path)`,
);
log(
  `remote hello through the SDK (PhaseClient.run, p2p): p50 ${
    sdkP50.toFixed(2)
  } ms (${(sdkP50 - p50).toFixed(2)} ms over the CLI path; target within 1 ms)`,
);
// Replicas: three distinct capable nodes (found in the DHT once, then
// reused by the transport), each receipt verified, then compared; against
// one pinned run through the SDK in the same rounds.
await sdk.run({ module, args: ["replica"] }, { replicas: 3 });
const replicaRounds = Math.max(10, Math.floor(Number(values.jobs) / 5));
const single: number[] = [];
const replicated: number[] = [];
for (let i = 0; i < replicaRounds; i++) {
  let started = performance.now();
  await sdk.run({ module, args: ["replica"] }, { node: pinned });
  single.push(performance.now() - started);
  started = performance.now();
  const agreed = await sdk.run({ module, args: ["replica"] }, {
    replicas: 3,
  });
  replicated.push(performance.now() - started);
  if (agreed.replication.agreeing.length !== 3) {
    throw new Error("replicas disagree");
  }
}
const singleP50 = percentile(single, 0.5);
const replicatedP50 = percentile(replicated, 0.5);
log(
  `replicas: 3 (three nodes at once, receipts compared, ${replicaRounds} runs): p50 ${
    replicatedP50.toFixed(2)
  } ms vs ${singleP50.toFixed(2)} ms for one node (x${
    (replicatedP50 / singleP50).toFixed(2)
  })`,
);
log(
  `memory: ${
    perNode.toFixed(1)
  } MiB RSS per node (${count} nodes in one process)`,
);
if (values.json) {
  console.log(JSON.stringify({
    nodes: count,
    first_capable_median_ms: percentile(firstTimes, 0.5),
    join_median_ms: percentile(joinTimes, 0.5),
    list_all_median_ms: percentile(allTimes, 0.5),
    remote_p50_ms: p50,
    remote_p99_ms: percentile(latencies, 0.99),
    sdk_remote_p50_ms: sdkP50,
    sdk_single_p50_ms: singleP50,
    replicas_3_p50_ms: replicatedP50,
    rss_per_node_mib: perNode,
  }));
}
await client.stop();
await Promise.all(nodes.map((n) => n.stop()));
await Promise.all(services.map((s) => s.close()));
Deno.exit(0);
