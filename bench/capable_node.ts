/**
 * What the benches' capable nodes announce and how they take jobs: one
 * place for the swarm's worker processes and the round-trip bench.
 * @module
 */
import {
  acceptJobs,
  type Capability,
  type PhaseNode,
} from "../discovery/mod.ts";
import { JobService } from "../node/mod.ts";
import { RUNTIME_VERSION } from "../runner/mod.ts";
import type { NodeKey } from "../schemas/mod.ts";

/** The capability every bench node that runs jobs announces. */
export const benchCapability = (): Capability => ({
  arch: "x86_64",
  cpu_cores: 2,
  memory_mb: 512,
  runtime: { name: "phase-deno", version: RUNTIME_VERSION, wasi: "preview1" },
  limits: { max_timeout_seconds: 60, max_module_bytes: 16 << 20 },
  load: { queued: 0, queue_limit: 64 },
});

/**
 * Makes `node` take jobs over libp2p with one sandbox process (started on
 * its first job); returns the job service, for closing.
 */
export async function acceptBenchJobs(
  node: PhaseNode,
  key: NodeKey,
): Promise<JobService> {
  const jobs = new JobService({ key, arch: "x86_64", sandboxSize: 1 });
  await acceptJobs(node, {
    key,
    arch: "x86_64",
    dataDir: null,
    jobs,
    capability: benchCapability,
  });
  return jobs;
}
