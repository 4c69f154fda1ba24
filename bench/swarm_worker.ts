/**
 * One OS process of a swarm (bench/swarm.ts drives it): hosts many Phase
 * libp2p nodes on loopback and obeys JSON lines on stdin, answering JSON
 * lines on stdout.
 *
 * - `{"op":"start","capable":[true,false,…],"bootstrap":[multiaddr…]}`
 *   starts one node per entry (capable ones run jobs), each dialling three
 *   random addresses among `bootstrap` and the nodes this process started
 *   before; answers `{"event":"node",…}` per node, then `{"event":"started"}`.
 * - `{"op":"leave","peers":[peer id…]}` stops those nodes (a graceful
 *   leave); answers `{"event":"left","peers":[…]}`.
 * - `{"op":"rss"}` answers `{"event":"rss","rss":bytes,"base":bytes,"nodes":n}`.
 *
 * The process ends when stdin closes. A crash is played by killing it.
 *
 * Usage: deno run -A bench/swarm_worker.ts
 */
import { PhaseNode } from "../discovery/mod.ts";
import type { JobService } from "../node/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { acceptBenchJobs, benchCapability } from "./capable_node.ts";

interface Hosted {
  node: PhaseNode;
  jobs: JobService | null;
}

const debug = (line: string) =>
  Deno.env.get("SWARM_DEBUG") && console.error(`[${Deno.pid}] ${line}`);
const hosted = new Map<string, Hosted>();
const base = Deno.memoryUsage().rss;
const encoder = new TextEncoder();
const say = (message: unknown) =>
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(message) + "\n"));

async function startOne(capable: boolean, bootstrap: string[]): Promise<void> {
  const key = await generateKey();
  const own = [...hosted.values()].map((h) => h.node.multiaddrs()[0]);
  // A few peers, so that one busy peer does not fail the join.
  const seeds = [...new Set([...bootstrap, ...own])]
    .sort(() => Math.random() - 0.5).slice(0, 3);
  const node = await PhaseNode.start({
    key,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: seeds,
    // Hundreds of nodes on a shared machine: joins may wait their turn.
    joinTimeoutMs: 15_000,
    capability: capable ? benchCapability : undefined,
  });
  let jobs: JobService | null = null;
  // Sandbox processes start on a node's first job.
  if (capable) jobs = await acceptBenchJobs(node, key);
  hosted.set(node.peerId, { node, jobs });
  say({
    event: "node",
    peer_id: node.peerId,
    address: node.multiaddrs()[0],
    capable,
  });
}

async function leave(peers: string[]): Promise<void> {
  await Promise.all(peers.map(async (peerId) => {
    const h = hosted.get(peerId);
    if (!h) return;
    hosted.delete(peerId);
    await h.node.stop().catch(() => {});
    await h.jobs?.close().catch(() => {});
  }));
  say({ event: "left", peers });
}

/** Nodes a process starts at once (joins mostly wait on the network). */
const START_CONCURRENCY = 2;

/**
 * Starts a node; a join that times out (a loaded machine) is tried again
 * through other peers after a pause that doubles (1, 2, 4, 8 s), as an
 * operator would, four times at most.
 */
async function startWithRetries(
  capable: boolean,
  bootstrap: string[],
): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const t = performance.now();
    try {
      await startOne(capable, bootstrap);
      debug(`started in ${(performance.now() - t).toFixed(0)} ms`);
      return;
    } catch (error) {
      debug(`failed in ${(performance.now() - t).toFixed(0)} ms: ${error}`);
      if (attempt === 5) {
        say({ event: "error", message: (error as Error).message });
        return;
      }
      await new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
    }
  }
}

let buffered = "";
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  buffered += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    const command = JSON.parse(line);
    if (command.op === "start") {
      const queue = [...command.capable as boolean[]];
      await Promise.all(
        Array.from({ length: START_CONCURRENCY }, async () => {
          while (queue.length > 0) {
            await startWithRetries(queue.shift()!, command.bootstrap);
          }
        }),
      );
      say({ event: "started" });
    } else if (command.op === "leave") {
      await leave(command.peers);
    } else if (command.op === "rss") {
      say({
        event: "rss",
        rss: Deno.memoryUsage().rss,
        base,
        nodes: hosted.size,
      });
    }
  }
}
await leave([...hosted.keys()]);
Deno.exit(0);
