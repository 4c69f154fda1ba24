/**
 * What every job-running command needs: the node key, where receipts go,
 * and a sandbox pool; with Private mode enforced.
 * @module
 */
import { loadIdentity } from "../runner/identity.ts";
import { MeteredModuleCache } from "../runner/metered_cache.ts";
import { SandboxPool } from "../runner/sandbox.ts";
import type { NodeKey } from "../schemas/mod.ts";
import { CliError } from "./errors.ts";
import { dataDir, dataPaths } from "./paths.ts";
import { findWritePermission } from "./write_access.ts";

/** Options shared by commands that run jobs. */
export interface NodeOptions {
  /** Data directory override. */
  "data-dir"?: string;
  /** Key file override. */
  key?: string;
  /** Receipts directory override. */
  receipts?: string;
  /** Use a throwaway key. */
  ephemeral?: boolean;
  /** Private mode: throwaway key, nothing logged, writes denied. */
  private?: boolean;
}

/** A ready node. */
export interface NodeContext {
  /** Signing key. */
  key: NodeKey;
  /** Where receipts are logged, or null (Private mode). */
  receiptsDir: string | null;
  /** Sandbox processes. */
  sandbox: SandboxPool;
  /** Metered modules, on disk in the data directory unless private. */
  modules: MeteredModuleCache;
}

/**
 * Refuses Private mode unless this process cannot write files, not even to
 * one folder: Private mode is enforced by the permission system, not by
 * good intentions. `paths` are places the command could write to.
 */
export function assertPrivateMode(paths: (string | undefined)[] = []): void {
  const grant = findWritePermission(paths);
  if (grant !== null) {
    throw new CliError(
      `private mode needs write permission denied, but it is granted (${grant}): run without --allow-write (and without -A)`,
    );
  }
}

/** Opens the node for the given options. */
export async function openNode(
  options: NodeOptions,
  sandboxSize = 1,
): Promise<NodeContext> {
  if (options.private) {
    let data: string | undefined;
    try {
      data = dataDir(options["data-dir"]);
    } catch {
      data = undefined;
    }
    assertPrivateMode([data, options.key, options.receipts]);
  }
  const ephemeral = options.private || options.ephemeral;
  const paths = ephemeral && options.private
    ? null
    : dataPaths(dataDir(options["data-dir"]));
  const key = await loadIdentity({
    path: options.key ?? paths?.key ?? "",
    ephemeral,
    // The data directory is created on first use; a --key folder must exist.
    createFolder: options.key === undefined,
  });
  return {
    key,
    receiptsDir: options.private ? null : options.receipts ?? paths!.receipts,
    sandbox: new SandboxPool({ size: sandboxSize }),
    modules: new MeteredModuleCache({
      dir: options.private ? null : paths?.modules,
    }),
  };
}
