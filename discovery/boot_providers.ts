/**
 * Boot providers in the DHT: many providers per channel/arch coexist, each
 * announced with provide() on the CID of `/phase/<channel>/<arch>/manifest`
 * and described by its own signed record pointing at its manifest URL.
 * @module
 */
import type { PhaseNode } from "./node.ts";
import { bootProviderKey } from "./records.ts";

/** The provide/findProviders key of boot providers for a channel/arch. */
export function bootTopic(channel: string, arch: string): string {
  return `/phase/${channel}/${arch}/manifest`;
}

/** A boot provider found in the DHT. */
export interface BootProviderInfo {
  /** Its peer id. */
  peerId: string;
  /** Where its signed manifest is. */
  manifestUrl: string;
  /** Its manifest_version when it published, if known. */
  manifestVersion: number | null;
}

/** Announces this node as a boot provider for a channel/arch. */
export async function publishBootProvider(
  node: PhaseNode,
  channel: string,
  arch: string,
  manifestUrl: string,
  manifestVersion: number | null = null,
): Promise<void> {
  await node.putRecord(
    "boot-provider",
    bootProviderKey(channel, arch, node.peerId),
    {
      manifest_url: manifestUrl,
      manifest_version: manifestVersion,
    },
  );
  await node.provide(bootTopic(channel, arch));
}

/** Finds boot providers for a channel/arch, with their manifest URLs. */
export async function findBootProviders(
  node: PhaseNode,
  channel: string,
  arch: string,
  timeoutMs = 5000,
): Promise<BootProviderInfo[]> {
  const providers = await node.findProviders(
    bootTopic(channel, arch),
    timeoutMs,
  );
  const found = await Promise.all(providers.map(async ({ peerId }) => {
    try {
      const record = await node.getRecord(
        bootProviderKey(channel, arch, peerId),
        timeoutMs,
      );
      const url = record?.payload.manifest_url;
      if (typeof url !== "string") return null;
      const version = record!.payload.manifest_version;
      return {
        peerId,
        manifestUrl: url,
        manifestVersion: typeof version === "number" ? version : null,
      };
    } catch {
      return null;
    }
  }));
  return found.filter((f): f is BootProviderInfo => f !== null);
}
