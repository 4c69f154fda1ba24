/**
 * A swarm of Phase nodes spread over several OS processes on loopback
 * (bench/swarm_worker.ts), for the swarm bench and its smaller test: grow
 * it, make nodes leave (gracefully, or killed with their process), make new
 * ones join, run `phase submit --auto` from fresh clients and check lookups
 * against the times nodes left.
 * @module
 */
import { PhaseNode } from "../discovery/mod.ts";
import { generateKey } from "../schemas/mod.ts";

const path = (url: URL) => decodeURIComponent(url.pathname);
const WORKER = path(new URL("./swarm_worker.ts", import.meta.url));
/** The repository root, with a trailing slash. */
export const ROOT = path(new URL("../", import.meta.url));

/** A node of the swarm, as the coordinator knows it. */
export interface SwarmNode {
  /** Peer id. */
  peerId: string;
  /** A loopback multiaddr with `/p2p/…`. */
  address: string;
  /** Whether it runs jobs. */
  capable: boolean;
  /** The process hosting it. */
  process: SwarmProcess;
}

/** A node that left, and when (performance.now() of the coordinator). */
export interface Departure {
  /** When it was gone for sure. */
  at: number;
  /** How: stopped by its process, or killed with it. */
  how: "left" | "killed";
  /** Whether it ran jobs. */
  capable: boolean;
}

type Event = Record<string, unknown> & { event: string };

/** One worker process. */
export class SwarmProcess {
  readonly child: Deno.ChildProcess;
  readonly peers = new Set<string>();
  /** Nodes that failed to start, one line each. */
  readonly errors: string[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: { want: string; resolve: (e: Event) => void }[] = [];
  #onNode: (e: Event, p: SwarmProcess) => void;
  /** Resolves when the process has exited. */
  readonly done: Promise<Deno.CommandStatus>;

  constructor(onNode: (e: Event, p: SwarmProcess) => void) {
    this.#onNode = onNode;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: Deno.env.get("SWARM_DEBUG") ? "inherit" : "null",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.done = this.child.status;
    this.#read();
  }

  async #read(): Promise<void> {
    let buffered = "";
    try {
      for await (
        const chunk of this.child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buffered += chunk;
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const event = JSON.parse(buffered.slice(0, newline)) as Event;
          buffered = buffered.slice(newline + 1);
          if (event.event === "node") this.#onNode(event, this);
          if (event.event === "error") this.errors.push(String(event.message));
          const i = this.#waiters.findIndex((w) => w.want === event.event);
          if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(event);
        }
      }
    } catch {
      // killed
    }
  }

  /** Sends a command and waits for the event that answers it. */
  async ask(command: unknown, want: string): Promise<Event> {
    const answered = new Promise<Event>((resolve) =>
      this.#waiters.push({ want, resolve })
    );
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify(command) + "\n"),
    );
    return await answered;
  }

  /** Ends the process gracefully (its nodes stop). */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.done;
  }
}

/** Options for {@link Swarm.grow}. */
export interface GrowOptions {
  /** OS processes. */
  processes: number;
  /** Nodes per process. */
  perProcess: number;
  /** Fraction of capable nodes (every round(1/fraction)th node). */
  capableFraction: number;
  /** Hears progress lines. */
  log?: (line: string) => void;
}

/** A swarm of nodes in worker processes. */
export class Swarm {
  readonly processes: SwarmProcess[] = [];
  readonly alive = new Map<string, SwarmNode>();
  readonly departed = new Map<string, Departure>();
  readonly capableEvery: number;
  #started = 0;

  private constructor(capableFraction: number) {
    this.capableEvery = Math.round(1 / capableFraction);
  }

  #onNode = (e: Event, process: SwarmProcess) => {
    const node = {
      peerId: e.peer_id as string,
      address: e.address as string,
      capable: e.capable as boolean,
      process,
    };
    this.alive.set(node.peerId, node);
    process.peers.add(node.peerId);
  };

  /** The next `count` capable flags (every capableEvery-th node is capable). */
  #flags(count: number): boolean[] {
    return Array.from(
      { length: count },
      () => ++this.#started % this.capableEvery === 0,
    );
  }

  /** Starts the processes and grows the swarm to processes × perProcess. */
  static async grow(options: GrowOptions): Promise<Swarm> {
    const swarm = new Swarm(options.capableFraction);
    for (let i = 0; i < options.processes; i++) {
      swarm.processes.push(new SwarmProcess(swarm.#onNode));
    }
    // One seed node, then every process grows its share in parallel, each
    // new node dialling the seed or a node of its own process.
    await swarm.processes[0].ask(
      { op: "start", capable: swarm.#flags(1), bootstrap: [] },
      "started",
    );
    const seed = [...swarm.alive.values()][0].address;
    const started = performance.now();
    const target = options.processes * options.perProcess;
    const progress = setInterval(() => {
      options.log?.(
        `  ${swarm.alive.size}/${target} nodes after ${
          ((performance.now() - started) / 1000).toFixed(0)
        } s, load average ${Deno.loadavg()[0].toFixed(1)}`,
      );
    }, 60_000);
    try {
      await Promise.all(swarm.processes.map((p, i) =>
        p.ask({
          op: "start",
          capable: swarm.#flags(options.perProcess - (i === 0 ? 1 : 0)),
          bootstrap: [seed],
        }, "started")
      ));
    } finally {
      clearInterval(progress);
    }
    const errors = swarm.processes.flatMap((p) => p.errors);
    options.log?.(
      `grew to ${swarm.alive.size} nodes in ${swarm.processes.length} processes${
        errors.length
          ? ` (${errors.length} failed to join 5 times, first: ${errors[0]})`
          : ""
      }`,
    );
    return swarm;
  }

  /** `count` distinct random live nodes' addresses: a bootstrap list. */
  bootstrapList(count = 3): string[] {
    return [...this.alive.values()].sort(() => Math.random() - 0.5)
      .slice(0, count).map((n) => n.address);
  }

  /** Live capable nodes. */
  capable(): SwarmNode[] {
    return [...this.alive.values()].filter((n) => n.capable);
  }

  /** `count` new nodes join in a random live process. */
  async join(count: number): Promise<void> {
    const process = this.processes[
      Math.floor(Math.random() * this.processes.length)
    ];
    await process.ask({
      op: "start",
      capable: this.#flags(count),
      bootstrap: this.bootstrapList(),
    }, "started");
  }

  /** `count` random live nodes (capable ones among them) leave gracefully. */
  async leave(count: number): Promise<string[]> {
    const nodes = [...this.alive.values()].sort(() => Math.random() - 0.5)
      .slice(0, count);
    const byProcess = Map.groupBy(nodes, (n) => n.process);
    await Promise.all(
      [...byProcess].map(([process, ns]) =>
        process.ask({ op: "leave", peers: ns.map((n) => n.peerId) }, "left")
      ),
    );
    const at = performance.now();
    for (const n of nodes) this.#gone(n, at, "left");
    return nodes.map((n) => n.peerId);
  }

  /**
   * Kills a random process holding a capable node with SIGKILL (its nodes
   * say no goodbye) and starts a new process with as many new nodes.
   */
  async crashAndReplace(): Promise<number> {
    const victims = this.processes.filter((p) =>
      [...p.peers].some((id) => this.alive.get(id)?.capable)
    );
    const process = victims[Math.floor(Math.random() * victims.length)];
    const count = process.peers.size;
    process.child.kill("SIGKILL");
    await process.done;
    const at = performance.now();
    for (const id of process.peers) {
      this.#gone(this.alive.get(id)!, at, "killed");
    }
    this.processes.splice(this.processes.indexOf(process), 1);
    const fresh = new SwarmProcess(this.#onNode);
    this.processes.push(fresh);
    await fresh.ask({
      op: "start",
      capable: this.#flags(count),
      bootstrap: this.bootstrapList(),
    }, "started");
    return count;
  }

  #gone(node: SwarmNode, at: number, how: Departure["how"]): void {
    this.alive.delete(node.peerId);
    node.process.peers.delete(node.peerId);
    this.departed.set(node.peerId, { at, how, capable: node.capable });
  }

  /** Resident memory of every process: total, and per node above each process's base. */
  async memory(): Promise<{ totalMiB: number; perNodeMiB: number }> {
    const answers = await Promise.all(
      this.processes.map((p) => p.ask({ op: "rss" }, "rss")),
    );
    let total = 0, above = 0, nodes = 0;
    for (const a of answers) {
      total += a.rss as number;
      above += (a.rss as number) - (a.base as number);
      nodes += a.nodes as number;
    }
    return {
      totalMiB: total / 2 ** 20,
      perNodeMiB: above / nodes / 2 ** 20,
    };
  }

  /**
   * A lookup by a fresh client, timed from the client's start (its join
   * included): when it listed its first capable node, when it had listed
   * every capable node alive when it started (Infinity if it never did
   * before its timeout), what it listed, and the listed nodes that had
   * already left when the lookup started (which must be none).
   */
  async lookup(): Promise<{
    firstMs: number;
    allMs: number;
    listed: string[];
    stale: { peerId: string; goneMs: number }[];
  }> {
    const started = performance.now();
    const wanted = new Set(this.capable().map((n) => n.peerId));
    let client: PhaseNode | undefined;
    // On a loaded machine a join can time out: the time counts from the first
    // attempt.
    for (let attempt = 1; !client; attempt++) {
      try {
        client = await PhaseNode.start({
          key: await generateKey(),
          listen: ["/ip4/127.0.0.1/tcp/0"],
          bootstrap: this.bootstrapList(),
          clientMode: true,
          joinTimeoutMs: 15_000,
        });
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
    try {
      let firstMs = Infinity, allMs = Infinity;
      const listed = new Set<string>();
      // Ends once every wanted node is listed: the rest of the lookup (the
      // walk for nodes the referrals did not name) would find nothing new.
      const complete = new AbortController();
      await client.findCapable({
        arch: "x86_64",
        limit: 1000,
        signal: complete.signal,
        onFound: ({ peerId }) => {
          const at = performance.now() - started;
          listed.add(peerId);
          firstMs = Math.min(firstMs, at);
          if ([...wanted].every((id) => listed.has(id))) {
            allMs = at;
            complete.abort();
          }
        },
      });
      const stale = [...listed].flatMap((peerId) => {
        const gone = this.departed.get(peerId);
        return gone && gone.at < started
          ? [{ peerId, goneMs: started - gone.at }]
          : [];
      });
      return { firstMs, allMs, listed: [...listed], stale };
    } finally {
      await client.stop();
    }
  }

  /** Ends every process. */
  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.close()));
  }
}

/** What one job run by {@link submitAutoCli} gave. */
export interface JobOutcome {
  /** Exit 0 with the right output and a verified receipt. */
  ok: boolean;
  /** Wall time, process start included. */
  ms: number;
  /** The node that ran it. */
  signer?: string;
  /** Nodes tried before it (lines "… trying the next node"). */
  retries: number;
  /** stderr when it failed. */
  detail: string;
}

/** One `phase submit --auto` run by a fresh client (its own process). */
export async function submitAutoCli(
  bootstrap: string[],
  message: string,
): Promise<JobOutcome> {
  const started = performance.now();
  const out = await new Deno.Command(`${ROOT}phase`, {
    args: [
      "submit",
      `${ROOT}examples/wasm/hello.wasm`,
      "--auto",
      ...bootstrap.flatMap((address) => ["--bootstrap", address]),
      "--",
      message,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", PHASE_DENO: Deno.execPath() },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  const retries =
    stderr.split("\n").filter((l) => l.endsWith("trying the next node")).length;
  const signer = stderr.match(/receipt ✓ verified, signed by (12D3KooW\w+)/)
    ?.[1];
  const expected = [...message].reverse().join("") + "\n";
  const ok = out.code === 0 && stdout === expected && signer !== undefined;
  return { ok, ms, signer, retries, detail: ok ? "" : stderr.slice(-2000) };
}

/**
 * Runs `count` jobs, `concurrency` at a time, job i starting no earlier than
 * i × `spacingMs` after the first (so that they span a given time however
 * fast the machine is); `bootstrap` picks each client's bootstrap peers.
 */
export async function runJobs(
  count: number,
  concurrency: number,
  bootstrap: () => string[],
  options: {
    spacingMs?: number;
    onJob?: (done: number, outcome: JobOutcome) => void;
  } = {},
): Promise<JobOutcome[]> {
  const results: JobOutcome[] = [];
  const started = performance.now();
  let next = 0, done = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      const wait = started + i * (options.spacingMs ?? 0) - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      results[i] = await submitAutoCli(bootstrap(), `job ${i}`);
      options.onJob?.(++done, results[i]);
    }
  }));
  return results;
}

/** Options for {@link churn}. */
export interface ChurnOptions {
  /** `submit --auto` jobs to run. */
  jobs: number;
  /** How many run at once. */
  concurrency: number;
  /** Time between waves. */
  waveMs: number;
  /**
   * Waves the jobs span at least: they are spread over this many waves, and
   * the churn goes on until they have all run.
   */
  minWaves: number;
  /** Nodes that leave gracefully (and as many that join) per wave. */
  leavePerWave: number;
  /**
   * From the second wave on, every this many waves a process is killed
   * instead (and replaced by a new one with as many new nodes).
   */
  crashEveryWaves: number;
  /** Hears one line per wave. */
  log?: (line: string) => void;
}

/** What {@link churn} measured. */
export interface ChurnResult {
  /** Every job's outcome. */
  results: JobOutcome[];
  /** Waves run. */
  waves: number;
  /** Nodes that left gracefully. */
  left: number;
  /** Nodes killed with their process. */
  killed: number;
  /** Capable nodes among those gone. */
  capableGone: number;
  /** Nodes that joined. */
  joined: number;
  /** Jobs that needed more than one node. */
  retried: number;
  /** Distinct nodes that ran jobs. */
  signers: number;
  /** Lookups run meanwhile. */
  lookups: number;
  /** Median time to the first capable node of those lookups. */
  firstP50: number;
  /** Listed nodes that had left before their lookup started. */
  stale: { peerId: string; goneMs: number }[];
}

/**
 * Runs the jobs while nodes leave and join in waves, and fresh clients look
 * up capable nodes one after another; returns what happened.
 */
export async function churn(
  swarm: Swarm,
  options: ChurnOptions,
): Promise<ChurnResult> {
  let running = true;
  let waves = 0, left = 0, killed = 0, joined = 0, lookups = 0;
  const stale: ChurnResult["stale"] = [];
  const firsts: number[] = [];
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waving = (async () => {
    while (running) {
      await pause(options.waveMs);
      if (!running) break;
      waves++;
      if (waves >= 2 && (waves - 2) % options.crashEveryWaves === 0) {
        const count = await swarm.crashAndReplace();
        killed += count;
        joined += count;
        options.log?.(
          `wave ${waves}: a process was killed (${count} nodes) and replaced`,
        );
      } else {
        left += (await swarm.leave(options.leavePerWave)).length;
        await swarm.join(options.leavePerWave);
        joined += options.leavePerWave;
        options.log?.(
          `wave ${waves}: ${options.leavePerWave} nodes left, ${options.leavePerWave} joined`,
        );
      }
    }
  })();
  const looking = (async () => {
    while (running) {
      const lookup = await swarm.lookup().catch(() => null);
      if (!lookup) continue; // its bootstrap peers had all just left
      lookups++;
      firsts.push(lookup.firstMs);
      stale.push(...lookup.stale);
      await pause(500);
    }
  })();
  let results: JobOutcome[];
  try {
    let failures = 0;
    results = await runJobs(
      options.jobs,
      options.concurrency,
      () => swarm.bootstrapList(),
      {
        spacingMs: options.minWaves * options.waveMs / options.jobs,
        onJob: (done, outcome) => {
          if (!outcome.ok) failures++;
          if (done % 10 === 0 || !outcome.ok) {
            options.log?.(
              `${done}/${options.jobs} jobs done, ${failures} failed${
                outcome.ok ? "" : `: ${outcome.detail.split("\n").at(-1)}`
              }`,
            );
          }
        },
      },
    );
    // However fast the jobs ran, the swarm churns as much as asked.
    while (waves < options.minWaves) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    running = false;
    await waving;
    await looking;
  }
  return {
    results,
    waves,
    left,
    killed,
    capableGone: [...swarm.departed.values()].filter((d) => d.capable).length,
    joined,
    retried: results.filter((r) => r.retries > 0).length,
    signers: new Set(results.map((r) => r.signer).filter(Boolean)).size,
    lookups,
    firstP50: quantile(firsts, 0.5),
    stale,
  };
}

/** The p-th quantile of xs. */
export function quantile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
