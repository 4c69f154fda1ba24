/**
 * A Phase libp2p node: TCP + Noise + Yamux, identify, ping, a Kademlia DHT
 * under `/phase/kad/1.0.0` with validators for `/phase/…` records, optional
 * mDNS, and the capability advertisement that lets clients find nodes able
 * to run a job. Its libp2p identity is the node key, so its peer id is the
 * `node_peer_id` of the receipts it signs.
 * @module
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { type KadDHT, kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { mdns } from "@libp2p/mdns";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { MemoryDatastore } from "datastore-core";
import { Key } from "interface-datastore";
import { Libp2pRecord } from "@libp2p/record";
import { toString as bytesToString } from "uint8arrays/to-string";
import type { Capability, NodeKey } from "../schemas/mod.ts";
import {
  capabilityKey,
  decodeRecord,
  DEFAULT_RECORD_TTL_MS,
  encodeRecord,
  RecordError,
  type RecordType,
  selectRecord,
  type SignedRecord,
  signRecord,
  validatorKeepingNewest,
} from "./records.ts";
import { MAX_MESSAGE_BYTES } from "./framing.ts";
import {
  answerCapability,
  PROBE_TIMEOUT_MS,
  readCapability,
} from "./capability_protocol.ts";
import {
  answerReferrals,
  askReferrals,
  MAX_REFERRALS,
} from "./referral_protocol.ts";

export type { Capability };

/** The DHT protocol name (Phase's own DHT, not the public IPFS one). */
export const DHT_PROTOCOL = "/phase/kad/1.0.0";

/** A node found by discovery. */
export interface FoundNode {
  /** Peer id. */
  peerId: string;
  /** Its capability record's payload. */
  capability: Capability;
  /** Addresses it can be dialled at. */
  addresses: string[];
}

/** Options for {@link PhaseNode.start}. */
export interface PhaseNodeOptions {
  /** Node key (its peer id becomes the libp2p peer id). */
  key: NodeKey;
  /** Listen multiaddrs (default `/ip4/0.0.0.0/tcp/0`). */
  listen?: string[];
  /** Multiaddrs to dial at start (with or without `/p2p/<id>`). */
  bootstrap?: string[];
  /** Discover peers on the LAN by mDNS. */
  mdns?: boolean;
  /** Only query the DHT, never answer queries (short-lived clients). */
  clientMode?: boolean;
  /** How long joining may take: dials, then the self lookup (default 5 s). */
  joinTimeoutMs?: number;
  /** Capability to advertise (nodes that accept jobs). */
  capability?: () => Capability | null;
  /**
   * How long the records this node signs live (default 30 min, and
   * {@link CAPABILITY_TTL_MS} for its capability record, which is
   * re-published every third of its life).
   */
  recordTtlMs?: number;
}

/**
 * How long a capability record lives: five minutes. A node re-publishes it
 * every third of that, and clients read it from the node itself anyway (see
 * capability_protocol.ts), so it only has to outlive a missed re-publication.
 */
export const CAPABILITY_TTL_MS = 5 * 60_000;

/**
 * How long a DHT node keeps another peer's provider entry (capability and
 * boot-provider announcements) after it was last announced: five minutes.
 * Entries past it are dropped at the next clean-up, every
 * {@link REPROVIDE_INTERVAL_MS}, so an entry of a node that left lingers at
 * most 6 minutes; live nodes announce again every minute. Lookups do not
 * depend on it (they ask every node, see capability_protocol.ts): a stale
 * entry costs them one refused dial.
 */
export const PROVIDER_TTL_MS = 5 * 60_000;

/** How often a node re-announces its provider entries and drops stale ones. */
export const REPROVIDE_INTERVAL_MS = 60_000;

/**
 * Most nodes one lookup's DHT walk may name for re-validation (a flood of
 * announcers costs no more). Each peer asked for referrals may name up to
 * MAX_REFERRALS more, from its own share.
 */
export const MAX_PROBES_PER_LOOKUP = 128;

/** The first pause before a join dials its bootstrap peers again. */
const JOIN_RETRY_FIRST_MS = 250;

/** Queries in flight per path of a DHT walk, and paths per walk. */
export const DHT_ALPHA = 3;

/**
 * Most peers one lookup asks for capable peers: those it is connected to,
 * then nodes it found.
 */
export const MAX_REFERRERS = 16;

/** Most capability reads one lookup runs at once. */
export const PROBES_IN_FLIGHT = 64;

/** The first line of an error's message, at most 200 characters. */
function firstLineOf(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(
    0,
    200,
  );
}

/** Limits of what a node stores for the DHT (records and provider entries). */
export const DHT_STORE_LIMITS = { maxKeys: 20_000, maxBytes: 32 * 1024 * 1024 };

/**
 * The node's datastore: in memory, with what it stores for the DHT
 * (`/dht/…`: records and provider entries, which strangers can ask any node
 * to keep) bounded. Past a bound the oldest DHT entries are dropped, so a
 * flood costs a node other entries, never its own ability to store, and
 * libp2p's own entries (peers) are never affected.
 */
export class BoundedDatastore extends MemoryDatastore {
  /** Size of each stored DHT value, by key, oldest first. */
  readonly #sizes = new Map<string, number>();
  #bytes = 0;
  /** The bounds (default {@link DHT_STORE_LIMITS}). */
  readonly limits: { maxKeys: number; maxBytes: number };

  /** Creates the store with its bounds. */
  constructor(
    limits: { maxKeys: number; maxBytes: number } = DHT_STORE_LIMITS,
  ) {
    super();
    this.limits = limits;
  }

  /** Stores a value; DHT entries beyond the bounds push out the oldest. */
  override put(
    key: Key,
    value: Uint8Array,
    options?: { signal?: AbortSignal },
  ): Key {
    const name = key.toString();
    if (!name.startsWith("/dht/")) {
      super.put(key, value, options);
      return key;
    }
    this.#forget(name);
    for (const [oldest] of this.#sizes) {
      if (
        this.#sizes.size < this.limits.maxKeys &&
        this.#bytes + value.length <= this.limits.maxBytes
      ) break;
      this.#forget(oldest);
      super.delete(new Key(oldest, false), options);
    }
    super.put(key, value, options);
    this.#sizes.set(name, value.length);
    this.#bytes += value.length;
    return key;
  }

  /** Removes a value. */
  override delete(key: Key, options?: { signal?: AbortSignal }): void {
    this.#forget(key.toString());
    super.delete(key, options);
  }

  #forget(name: string): void {
    this.#bytes -= this.#sizes.get(name) ?? 0;
    this.#sizes.delete(name);
  }
}

/** The content id used with provide/findProviders for a key string. */
export async function cidFor(key: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(key)));
}

/** Key under which nodes able to run a runtime on an arch announce themselves. */
export function capabilityTopic(arch: string, runtime: string): string {
  return `/phase/capability/${arch}/${runtime}`;
}

/** The runtime identifier used in topics and offers. */
export const WASM_RUNTIME = "wasi-preview1";

/**
 * Lets the process exit while a timer is pending: Deno numbers its timers
 * and unrefs them by number; Node returns an object with `unref`. The node
 * runs under both (the SDK's p2p transport uses it from Node).
 */
function unrefTimer(timer: unknown): void {
  const deno = (globalThis as { Deno?: { unrefTimer(id: number): void } })
    .Deno;
  if (deno) deno.unrefTimer(timer as number);
  else (timer as { unref?: () => void }).unref?.();
}

async function drain<T>(events: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const e of events) all.push(e);
  return all;
}

/** A running Phase libp2p node. */
export class PhaseNode {
  /**
   * The libp2p node underneath, for this layer's transports and tests. Left
   * out of the documented API (`@ignore`): its type is libp2p's, whose
   * surface is libp2p's to document, not Phase's.
   * @ignore
   */
  readonly libp2p: Libp2p<{ dht: KadDHT }>;
  /** The node key. */
  readonly key: NodeKey;
  #options: PhaseNodeOptions;
  #seq = Math.floor(Date.now() / 1000);
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    libp2p: Libp2p<{ dht: KadDHT }>,
    options: PhaseNodeOptions,
  ) {
    this.libp2p = libp2p;
    this.key = options.key;
    this.#options = options;
  }

  /** Starts a node, dials the bootstrap peers and joins the DHT. */
  static async start(options: PhaseNodeOptions): Promise<PhaseNode> {
    const privateKey = await generateKeyPairFromSeed(
      "Ed25519",
      options.key.seed,
    );
    // The node's own record store, so its validator can compare a record
    // offered for storage with the one it already keeps (kad-dht stores
    // records under /dht/record/<base32 key>).
    const datastore = new BoundedDatastore();
    const stored = async (key: Uint8Array) => {
      try {
        const raw = await datastore.get(
          new Key(`/dht/record/${bytesToString(key, "base32")}`, false),
        );
        return Libp2pRecord.deserialize(raw).value;
      } catch {
        return null;
      }
    };
    const libp2p = await createLibp2p({
      privateKey,
      datastore,
      addresses: { listen: options.listen ?? ["/ip4/0.0.0.0/tcp/0"] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      // Job messages may be as large as MAX_MESSAGE_BYTES.
      streamMuxers: [
        yamux({
          streamOptions: { maxReadBufferLength: MAX_MESSAGE_BYTES + 16 },
        }),
      ],
      peerDiscovery: options.mdns ? [mdns({ interval: 1000 })] : [],
      // libp2p's connection monitor opens a ping stream on every connection
      // every 10 s: with dozens of connections per node that was most of an
      // idle swarm's CPU (60 nodes: 14% of a core even at one ping a minute,
      // 6% without), and past what a busy machine gives it at 300 nodes.
      // Yamux's own keep-alive frames (every 30 s, no stream) keep
      // connections open and notice dead ones.
      connectionMonitor: { enabled: false },
      connectionManager: {
        // Many nodes behind one address (a LAN gateway, tests on loopback)
        // must not trip the per-address inbound rate limit.
        allow: [
          "/ip4/127.0.0.0/ipcidr/8",
          "/ip4/10.0.0.0/ipcidr/8",
          "/ip4/172.16.0.0/ipcidr/12",
          "/ip4/192.168.0.0/ipcidr/16",
        ],
        inboundConnectionThreshold: 1000,
        maxIncomingPendingConnections: 256,
      },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({
          protocol: DHT_PROTOCOL,
          clientMode: options.clientMode ?? false,
          // Phase runs on LANs: keep private and loopback addresses.
          peerInfoMapper: passthroughMapper,
          validators: { phase: validatorKeepingNewest(stored) },
          selectors: { phase: selectRecord },
          allowQueryWithZeroPeers: true,
          // kad-dht's defaults (10 disjoint paths of 10 queries in flight
          // each) make every walk open dozens of new connections; three by
          // three converges on the same closest peers with far fewer.
          alpha: DHT_ALPHA,
          disjointPaths: DHT_ALPHA,
          initialQuerySelfInterval: 0,
          // Provider entries of nodes that left expire within 6 min; a node
          // re-announces its own entries every minute (libp2p's defaults are
          // 48 h and hourly).
          reprovide: {
            validity: PROVIDER_TTL_MS,
            interval: REPROVIDE_INTERVAL_MS,
            threshold: PROVIDER_TTL_MS - REPROVIDE_INTERVAL_MS / 2,
          },
        }),
      },
    });
    const node = new PhaseNode(
      libp2p as unknown as Libp2p<{ dht: KadDHT }>,
      options,
    );
    if (options.mdns) {
      // libp2p only records peers found on the LAN; connect so the DHT
      // routing tables (and so discovery) include them.
      libp2p.addEventListener("peer:discovery", (event) => {
        const { id } = event.detail;
        if (id.equals(libp2p.peerId) || libp2p.getConnections(id).length > 0) {
          return;
        }
        libp2p.dial(id, { signal: AbortSignal.timeout(5000) }).catch(() => {});
      });
    }
    // kad-dht answers provider lookups with the addresses its peer store
    // holds, and libp2p fills in the node's own addresses a moment after
    // start: without them, a lookup in that moment omits this node.
    await libp2p.peerStore.merge(libp2p.peerId, {
      multiaddrs: libp2p.getMultiaddrs(),
    }).catch(() => {});
    if (options.capability) {
      await answerCapability(node, () => node.#signCapability());
    }
    if (!options.clientMode) await answerReferrals(node);
    try {
      await node.join(options.bootstrap ?? [], options.joinTimeoutMs);
    } catch (error) {
      await Promise.resolve(libp2p.stop()).catch(() => {});
      throw error;
    }
    if (options.capability) {
      // A first publication that fails (a walk timing out on a busy network)
      // does not fail the start: the node is up and answers reads, and it
      // publishes again as peers arrive, then every third of the record's
      // life. (It used to throw here with the node left running.)
      const published = await node.publishCapability().then(
        () => true,
        () => false,
      );
      // A node that joined through peers has published where it should;
      // one that knew none yet (mDNS finds peers later) publishes again.
      if (!published || options.mdns || !(await node.waitForPeers(0))) {
        node.#republishWhenConnected();
      }
      const ttl = options.recordTtlMs ?? CAPABILITY_TTL_MS;
      // kad-dht re-announces the provider entry itself (reprovide above).
      node.#timer = setInterval(() => {
        node.publishCapability({ provide: false }).catch(() => {});
      }, ttl / 3);
      unrefTimer(node.#timer);
    }
    return node;
  }

  /**
   * A record published while the node knew no peers lives only here; publish
   * again once peers arrive so it lands on the nodes closest to its key.
   */
  #republishWhenConnected(): void {
    let pending: ReturnType<typeof setTimeout> | undefined;
    let done = 0;
    const onPeer = () => {
      if (done >= 3 || pending) return;
      pending = setTimeout(() => {
        pending = undefined;
        done++;
        this.publishCapability().catch(() => {});
      }, 300);
      unrefTimer(pending);
      if (done >= 2) this.libp2p.removeEventListener("peer:identify", onPeer);
    };
    this.libp2p.addEventListener("peer:identify", onPeer);
  }

  /** Peer id string. */
  get peerId(): string {
    return this.libp2p.peerId.toString();
  }

  /** Addresses others can dial, with `/p2p/<id>`. */
  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString());
  }

  /**
   * Dials peers and runs a self lookup so the routing table fills. When no
   * bootstrap peer could be reached (a peer busy for a moment refuses or
   * drops the dial), it tries them all again after 0.25, 0.5, 1, 2… s, as
   * long as `timeoutMs` allows.
   */
  async join(bootstrap: string[], timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let pause = JOIN_RETRY_FIRST_MS;; pause *= 2) {
      const left = deadline - performance.now();
      const results = await Promise.allSettled(
        bootstrap.map((address) =>
          this.libp2p.dial(multiaddr(address), {
            // Whole milliseconds: Node's AbortSignal.timeout refuses others.
            signal: AbortSignal.timeout(Math.max(1, Math.ceil(left))),
          })
        ),
      );
      if (
        bootstrap.length === 0 || results.some((r) => r.status === "fulfilled")
      ) {
        break;
      }
      if (deadline - performance.now() <= pause) {
        const reason = (results[0] as PromiseRejectedResult).reason;
        throw new Error(
          `cannot reach any bootstrap peer: ${(reason as Error).message}`,
        );
      }
      await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())));
    }
    if (bootstrap.length > 0) {
      await this.waitForPeers(timeoutMs);
      // Servers look themselves up so that others can find them; clients
      // only query, and every query walks the DHT anyway.
      if (this.#options.clientMode) return;
      await drain(
        this.libp2p.services.dht.getClosestPeers(
          this.libp2p.peerId.toMultihash().bytes,
          {
            signal: AbortSignal.timeout(timeoutMs),
          },
        ),
      ).catch(() => {});
    }
  }

  /**
   * Waits until the DHT routing table holds a peer (identify runs after a
   * connection opens, and the table fills from it). False on timeout.
   */
  async waitForPeers(timeoutMs: number): Promise<boolean> {
    const table = (this.libp2p.services.dht as unknown as {
      routingTable: { size: number };
    }).routingTable;
    const deadline = performance.now() + timeoutMs;
    while (table.size === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return table.size > 0;
  }

  /** This node's current capability record, freshly signed, or null. */
  async #signCapability(): Promise<SignedRecord | null> {
    const capability = this.#options.capability?.();
    if (!capability) return null;
    return await signRecord(this.key, {
      type: "capability",
      key: capabilityKey(this.peerId),
      // Answers are not stored in the DHT: they need no new seq.
      seq: this.#seq,
      payload: capability,
      ttlMs: this.#options.recordTtlMs ?? CAPABILITY_TTL_MS,
    });
  }

  /** Signs and stores a record in the DHT. */
  async putRecord<P extends Record<string, unknown>>(
    type: RecordType,
    key: string,
    payload: P,
    timeoutMs = 10_000,
  ): Promise<SignedRecord<P>> {
    const record = await signRecord(this.key, {
      type,
      key,
      seq: ++this.#seq,
      payload,
      ttlMs: this.#options.recordTtlMs ??
        (type === "capability" ? CAPABILITY_TTL_MS : DEFAULT_RECORD_TTL_MS),
    });
    await drain(this.libp2p.services.dht.put(
      new TextEncoder().encode(key),
      encodeRecord(record),
      { signal: AbortSignal.timeout(timeoutMs) },
    ));
    return record;
  }

  /** Reads the best valid record under a key, or null. */
  async getRecord(key: string, timeoutMs = 5000): Promise<SignedRecord | null> {
    try {
      for await (
        const event of this.libp2p.services.dht.get(
          new TextEncoder().encode(key),
          {
            signal: AbortSignal.timeout(timeoutMs),
          },
        )
      ) {
        if (event.name === "VALUE") {
          return await decodeRecord(key, event.value);
        }
      }
    } catch (error) {
      if (error instanceof RecordError) throw error;
    }
    return null;
  }

  /**
   * Advertises this node's capability: its record, and its provider entry
   * unless `provide` is false.
   */
  async publishCapability(
    options: { provide?: boolean } = {},
  ): Promise<void> {
    const capability = this.#options.capability?.();
    if (!capability) return;
    await this.putRecord("capability", capabilityKey(this.peerId), capability);
    if (options.provide === false) return;
    const topic = await cidFor(capabilityTopic(capability.arch, WASM_RUNTIME));
    await drain(
      this.libp2p.services.dht.provide(topic, {
        signal: AbortSignal.timeout(10_000),
      }),
    )
      .catch(() => {});
  }

  /** Announces that this node serves boot artifacts for a channel/arch. */
  async provide(key: string): Promise<void> {
    await drain(this.libp2p.services.dht.provide(await cidFor(key), {
      signal: AbortSignal.timeout(10_000),
    }));
  }

  /** Peers that announced `key` with {@link provide}, with their addresses. */
  async findProviders(
    key: string,
    timeoutMs = 5000,
    limit = 20,
  ): Promise<{ peerId: string; addresses: string[] }[]> {
    const found = new Map<string, string[]>();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      for await (
        const event of this.libp2p.services.dht.findProviders(
          await cidFor(key),
          {
            signal: controller.signal,
          },
        )
      ) {
        if (event.name !== "PROVIDER") continue;
        for (const p of event.providers) {
          found.set(p.id.toString(), p.multiaddrs.map((a) => a.toString()));
        }
        if (found.size >= limit) break;
      }
    } catch {
      // timeout: return what was found
    } finally {
      clearTimeout(timer);
    }
    return [...found].map(([peerId, addresses]) => ({ peerId, addresses }));
  }

  /**
   * Finds nodes whose capability satisfies `accept`, best (least queued)
   * first. Candidates come from two sources, cheapest first:
   *
   * 1. The peers this node is connected to (a fresh client's bootstrap
   *    peers) are asked which peers run jobs (`/phase/capable-peers/1.0.0`,
   *    referral_protocol.ts): one stream on an open connection each.
   * 2. Only if that did not give `limit` nodes, the DHT walk names the nodes
   *    that announced the capability (each hop may open a new connection).
   *
   * Every candidate, whoever named it, is then asked for its current
   * capability record directly (re-validation, capability_protocol.ts), as
   * soon as it is named, so only nodes that answered during this lookup are
   * listed; `onFound` hears each one as it answers. A node that is gone, does
   * not answer within {@link PROBE_TIMEOUT_MS} or answers an invalid record
   * is skipped and `onWarning` hears one line for it. The lookup ends when
   * `limit` nodes have answered, when the walk and its reads end, at
   * `timeoutMs`, or when `signal` aborts.
   */
  async findCapable(
    filter: {
      arch?: string;
      accept?: (c: Capability) => boolean;
      /** Stop once this many capable nodes have answered (default 20). */
      limit?: number;
      /** Hears one line per skipped node. */
      onWarning?: (line: string) => void;
      /** Hears each node as it is found (before the lookup ends). */
      onFound?: (node: FoundNode) => void;
      /** Peers not to list (for instance, ones already tried). */
      exclude?: Set<string>;
      /** How long each node has to answer (default {@link PROBE_TIMEOUT_MS}). */
      probeTimeoutMs?: number;
      /** Ends the lookup early (it returns what was found). */
      signal?: AbortSignal;
    } = {},
    timeoutMs = 5000,
  ): Promise<FoundNode[]> {
    const arches = filter.arch ? [filter.arch] : ["x86_64", "aarch64"];
    const limit = filter.limit ?? 20;
    const lookup = new AbortController();
    const timer = setTimeout(
      () => lookup.abort(new DOMException("lookup timed out", "TimeoutError")),
      timeoutMs,
    );
    const onAbort = () => lookup.abort();
    filter.signal?.addEventListener("abort", onAbort);
    if (filter.signal?.aborted) lookup.abort();
    const asked = new Set<string>([this.peerId, ...filter.exclude ?? []]);
    const found: FoundNode[] = [];
    const probeMs = filter.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
    /** Reads a candidate's capability; false when it did not answer one. */
    const ask = async (
      peerId: string,
      addresses: string[],
    ): Promise<boolean> => {
      const signal = AbortSignal.any([
        lookup.signal,
        AbortSignal.timeout(probeMs),
      ]);
      try {
        const record = await readCapability(this, peerId, addresses, signal);
        const capability = record.payload;
        if (filter.accept && !filter.accept(capability)) return true;
        if (filter.arch && capability.arch !== filter.arch) return true;
        if (found.length >= limit) return true;
        const node = { peerId, capability, addresses };
        found.push(node);
        filter.onFound?.(node);
        if (found.length >= limit) lookup.abort();
        else refer(peerId);
        return true;
      } catch (error) {
        if (lookup.signal.aborted) return false;
        filter.onWarning?.(
          `skipped ${peerId}: ${
            error instanceof RecordError
              ? error.message
              : signal.aborted
              ? `no answer within ${probeMs} ms`
              : `unreachable (${firstLineOf(error)})`
          }`,
        );
        return false;
      }
    };
    // Reads run at most PROBES_IN_FLIGHT at a time, and no more than the
    // limit needs (with a margin for nodes that fail): a client that wants 8
    // nodes does not open 60 connections.
    const inFlightCap = Math.min(PROBES_IN_FLIGHT, limit + 4);
    const queue: { peerId: string; addresses: string[]; referred: boolean }[] =
      [];
    const reads: Promise<void>[] = [];
    let inFlight = 0;
    const pump = () => {
      while (
        inFlight < inFlightCap && queue.length > 0 && !lookup.signal.aborted
      ) {
        const { peerId, addresses, referred } = queue.shift()!;
        inFlight++;
        reads.push(
          ask(peerId, addresses).then((answered) => {
            // A referrer may have named a real node at a wrong address:
            // the walk (or another referrer) may name it again.
            if (!answered && referred) asked.delete(peerId);
          }).finally(() => {
            inFlight--;
            pump();
          }),
        );
      }
    };
    // Each source may name a bounded number of peers, so that no source
    // (a hostile referrer) can use up another's share.
    const consider = (
      source: { named: number; most: number; referrer: boolean },
      peerId: string,
      addresses: string[],
    ) => {
      if (asked.has(peerId) || source.named >= source.most) return;
      source.named++;
      asked.add(peerId);
      queue.push({ peerId, addresses, referred: source.referrer });
      pump();
    };
    /**
     * Waits until every read and referral started so far (and those they led
     * to) ended.
     */
    const settle = async () => {
      for (let settled = 0; settled < reads.length || queue.length > 0;) {
        if (lookup.signal.aborted) return;
        const batch = reads.slice(settled);
        await Promise.allSettled(batch);
        settled += batch.length;
        if (batch.length === 0) break;
      }
    };
    // Referrers: the peers this node is connected to, then each node found
    // (it is connected now, and knows capable peers of its own), at most
    // MAX_REFERRERS in all, each asked once, on a connection already open.
    const referrers = new Set<string>();
    const refer = (referrer: string) => {
      if (
        referrers.has(referrer) || referrers.size >= MAX_REFERRERS ||
        lookup.signal.aborted
      ) return;
      referrers.add(referrer);
      reads.push(askReferrer(referrer));
    };
    const askReferrer = async (referrer: string) => {
      const signal = AbortSignal.any([
        lookup.signal,
        AbortSignal.timeout(probeMs),
      ]);
      try {
        const source = { named: 0, most: MAX_REFERRALS, referrer: true };
        for (const p of await askReferrals(this, referrer, signal)) {
          consider(source, p.peer_id, p.addresses);
        }
      } catch (error) {
        // Peers from before the protocol simply do not speak it.
        if (
          lookup.signal.aborted ||
          (error as Error)?.name === "UnsupportedProtocolError"
        ) return;
        filter.onWarning?.(
          `ignored ${referrer}'s capable peers: ${
            signal.aborted
              ? `no answer within ${probeMs} ms`
              : firstLineOf(error)
          }`,
        );
      }
    };
    const referrals = async () => {
      for (const c of this.libp2p.getConnections()) {
        refer(c.remotePeer.toString());
      }
      await settle();
    };
    const walked = { named: 0, most: MAX_PROBES_PER_LOOKUP, referrer: false };
    const walk = async (arch: string) => {
      const topic = await cidFor(capabilityTopic(arch, WASM_RUNTIME));
      for await (
        const event of this.libp2p.services.dht.findProviders(topic, {
          signal: lookup.signal,
        })
      ) {
        if (event.name !== "PROVIDER") continue;
        for (const p of event.providers) {
          consider(
            walked,
            p.id.toString(),
            p.multiaddrs.map((a) => a.toString()),
          );
          if (walked.named >= walked.most) return;
        }
      }
    };
    try {
      await referrals();
      if (!lookup.signal.aborted && found.length < limit) {
        await Promise.allSettled(arches.map(walk));
        // Reads started late in the walk are bounded by the probe timeout.
        await settle();
      }
    } finally {
      clearTimeout(timer);
      filter.signal?.removeEventListener("abort", onAbort);
    }
    return found.sort((a, b) =>
      a.capability.load.queued - b.capability.load.queued
    );
  }

  /** Makes sure the peer's addresses are known before dialling it. */
  async remember(peerId: string, addresses: string[]): Promise<void> {
    if (addresses.length === 0) return;
    await this.libp2p.peerStore.merge(peerIdFromString(peerId), {
      multiaddrs: addresses.map((a) => multiaddr(a)),
    });
  }

  /** Stops the node. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.libp2p.stop();
  }
}
