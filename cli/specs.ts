/**
 * Every `phase` command as data: the single source of each command's parser
 * options, its help and the shell completions. Light on purpose: help and
 * completions load this and nothing of the runner, libp2p or ajv.
 * @module
 */
import { DEFAULT_LIMITS, limitRangeText } from "../runner/limits.ts";
import { RUNTIME_VERSION } from "../runner/version.ts";
import { EXIT_STATUS, LARGE_EXIT_STATUS } from "./exit_status.ts";
import type { CommandSpec, ExitSpec, Flags } from "./spec.ts";

const DATA_DIR_DEFAULT =
  "$PHASE_HOME, else $XDG_DATA_HOME/phase, else ~/.local/share/phase";
const ARCH_VALUES = "x86_64 (or amd64) or aarch64 (or arm64)";
const CHANNEL_VALUES = "stable, testing or nightly";
const KERNEL_CMDLINE = "console=ttyS0 panic=-1";

/** What Phase does when a flag says nothing, per job limit. */
const limitDefault = (value: string) => `${value}, or the job manifest's`;

/** Where a job-running command keeps its key and receipts. */
const NODE_FLAGS = {
  "data-dir": {
    type: "string",
    value: "DIR",
    description: "where the node key, receipts and cached modules live",
    defaultText: DATA_DIR_DEFAULT,
  },
  key: {
    type: "string",
    value: "FILE",
    description: "the key that signs receipts; its folder must exist",
    defaultText: "DATA_DIR/node.key, created on first use",
  },
  receipts: {
    type: "string",
    value: "DIR",
    description: "where receipts are logged",
    defaultText: "DATA_DIR/receipts",
  },
  ephemeral: {
    type: "boolean",
    description: "sign with a throwaway key",
  },
  private: {
    type: "boolean",
    description:
      "throwaway key, nothing written; refuses to start while any write permission is granted",
  },
} as const satisfies Flags;

/** The limits a job may set, as `run` and `execute-job` read them. */
const LIMIT_FLAGS = {
  memory: {
    type: "string",
    value: "MB",
    description: `memory budget of the whole job: ${
      limitRangeText("memoryMb")
    }`,
    defaultText: limitDefault(String(DEFAULT_LIMITS.memoryMb)),
  },
  timeout: {
    type: "string",
    value: "SECONDS",
    description: `wall-clock limit: ${limitRangeText("timeoutSeconds")}`,
    defaultText: limitDefault(String(DEFAULT_LIMITS.timeoutSeconds)),
  },
  fuel: {
    type: "string",
    value: "N",
    description: `instructions the guest may execute: ${
      limitRangeText("fuel")
    }; exit ${EXIT_STATUS.fuel_exhausted} when spent`,
    defaultText: limitDefault(
      `${
        DEFAULT_LIMITS.fuelPerSecond.toExponential().replace("+", "")
      } per second of --timeout`,
    ),
  },
} as const satisfies Flags;

/** Flags of `run` and `execute-job` besides the limits. */
const JOB_FLAGS = {
  manifest: {
    type: "string",
    value: "FILE",
    description:
      "job manifest (JSON) the module's hash must match; it may set limits, args, env and nonce",
    defaultText: "none",
  },
  receipt: {
    type: "string",
    value: "FILE",
    description: "also write the signed receipt to FILE",
    defaultText: "none",
  },
  json: {
    type: "boolean",
    description: "print the signed receipt as JSON",
  },
} as const satisfies Flags;

/** How `discover` and `submit` join libp2p. */
const CLIENT_FLAGS = {
  bootstrap: {
    type: "string",
    value: "MULTIADDR",
    multiple: true,
    description: "a peer to join the DHT through (needed in internet mode)",
    defaultText: "none",
  },
  mode: {
    type: "string",
    value: "MODE",
    default: "internet",
    description:
      "internet (the DHT, through --bootstrap) or local (peers on this network, by mDNS)",
  },
  listen: {
    type: "string",
    value: "MULTIADDR",
    multiple: true,
    description: "where this client listens",
    defaultText: "/ip4/0.0.0.0/tcp/0",
  },
  timeout: {
    type: "string",
    value: "SECONDS",
    default: "5",
    description: "how long to look for nodes",
  },
  json: { type: "boolean", description: "print JSON" },
} as const satisfies Flags;

const ARCH_FILTER = {
  type: "string",
  value: "ARCH",
  description: `only nodes of this architecture: ${ARCH_VALUES}`,
  defaultText: "any",
} as const;

const PROVIDER_URL = {
  type: "string",
  value: "URL",
  short: "a",
  description: "the provider",
  defaultText: "$PHASE_PROVIDER, else http://127.0.0.1:8080",
} as const;

const OUTPUT_FILE = {
  type: "string",
  value: "FILE",
  short: "o",
} as const;

const HELP_EXITS = [["0", "help printed"]] as const;

/** The release key file, for the commands that sign with it. */
const RELEASE_KEY_FILE = {
  type: "string",
  value: "KEYFILE",
  short: "k",
  description: "the release key (create one with phase keygen)",
  required: true,
} as const;

/** The release keys a verifier pins. */
const TRUSTED_KEYS = {
  type: "string",
  value: "KEY",
  multiple: true,
  description:
    "a trusted release key (peer id, base64 or hex; commas separate several)",
  required: true,
} as const;

/** A job's exit statuses that are not the guest's own code, grouped. */
function outcomeExits(): ExitSpec[] {
  const meaning: Record<keyof typeof EXIT_STATUS, string> = {
    timeout: "wall-clock timeout",
    fuel_exhausted: "fuel spent",
    memory_limit: "memory limit",
    trap: "trap (the guest crashed)",
  };
  const byStatus = new Map<number, string[]>();
  for (const [outcome, status] of Object.entries(EXIT_STATUS)) {
    byStatus.set(status, [
      ...byStatus.get(status) ?? [],
      meaning[outcome as keyof typeof EXIT_STATUS],
    ]);
  }
  return [...byStatus].map(([status, meanings]) => [
    String(status),
    meanings.join(" or "),
  ]);
}

/** Exit statuses of a command that runs a job. */
const JOB_EXITS: readonly ExitSpec[] = [
  ["0-255", "the guest's exit code"],
  [
    String(LARGE_EXIT_STATUS),
    "also for a guest exit code above 255 (the receipt keeps the full value)",
  ],
  ...outcomeExits(),
  ["1", "also when the job could not run (one line on stderr says why)"],
];

/** Every command, in the order `phase help` lists them. */
export const COMMANDS = {
  serve: {
    name: "serve",
    aliases: ["node"],
    summary: "run a node: boot artifacts and jobs over HTTP and libp2p",
    usage: ["serve [options]"],
    flags: {
      artifacts: {
        type: "string",
        value: "DIR",
        short: "a",
        description: "serve the artifacts in DIR/CHANNEL/ARCH",
        defaultText: "DATA_DIR/artifacts, seeded with the hello job",
      },
      channel: {
        type: "string",
        value: "CHANNEL",
        short: "c",
        default: "stable",
        description: `the channel served at /manifest.json: ${CHANNEL_VALUES}`,
      },
      arch: {
        type: "string",
        value: "ARCH",
        short: "A",
        // Deno names its architectures canonically: x86_64 or aarch64.
        default: Deno.build.arch,
        description:
          `the architecture served at /manifest.json: ${ARCH_VALUES}`,
      },
      port: {
        type: "string",
        value: "PORT",
        short: "p",
        default: "8080",
        description: "HTTP port, 0-65535 (0 picks a free one)",
      },
      bind: {
        type: "string",
        value: "ADDRESS",
        short: "b",
        default: "0.0.0.0",
        description: "address the HTTP server listens on",
      },
      advertise: {
        type: "string",
        value: "URL",
        multiple: true,
        description:
          "a URL this node is reached at, written into manifests and the boot script",
        defaultText: "http://ADDRESS:PORT unless bound to all addresses",
      },
      cmdline: {
        type: "string",
        value: "TEXT",
        description: "kernel command line in the manifests this node signs",
        defaultText: KERNEL_CMDLINE,
      },
      pubkey: {
        type: "string",
        value: "KEY",
        multiple: true,
        description:
          "a release key (peer id, base64 or hex) the boot script pins",
        defaultText: "the manifest's signers",
      },
      "data-dir": NODE_FLAGS["data-dir"],
      key: {
        type: "string",
        value: "FILE",
        description: "the node key",
        defaultText: "DATA_DIR/node.key, created on first use",
      },
      private: {
        type: "boolean",
        description:
          "throwaway key, nothing written (needs --artifacts and no write permission)",
      },
      "no-jobs": { type: "boolean", description: "serve artifacts only" },
      listen: {
        type: "string",
        value: "MULTIADDR",
        multiple: true,
        description: "where libp2p listens",
        defaultText: "/ip4/0.0.0.0/tcp/4001",
      },
      bootstrap: CLIENT_FLAGS.bootstrap,
      mode: {
        type: "string",
        value: "MODE",
        default: "internet",
        description:
          "internet (the DHT) or local (also finds peers on this network by mDNS)",
      },
      "no-dht": { type: "boolean", description: "no libp2p at all" },
      "no-mdns": {
        type: "boolean",
        description: "no mDNS, even in local mode",
      },
      "receipts-max": {
        type: "string",
        value: "N",
        description: "most receipts kept; the oldest go first",
        defaultText: "10000",
      },
      "receipts-max-mb": {
        type: "string",
        value: "MB",
        description: "most MiB of receipts kept",
        defaultText: "256",
      },
      "allow-private-module-urls": {
        type: "boolean",
        description:
          "let jobs fetch modules from loopback and private addresses",
      },
      json: {
        type: "boolean",
        description: "print where the node serves as one JSON line",
      },
    },
    exits: [
      ["0", "stopped by SIGINT (Ctrl-C) or SIGTERM"],
      ["1", "could not start (one line on stderr says why)"],
    ],
    examples: [
      "phase serve",
      "phase serve --artifacts build/artifacts --port 8081 --mode local",
    ],
  },
  discover: {
    name: "discover",
    summary: "find nodes that run jobs, through the DHT or by mDNS",
    usage: ["discover [options]"],
    flags: { ...CLIENT_FLAGS, arch: ARCH_FILTER },
    exits: [["0", "found at least one node"], ["1", "found none"]],
    examples: [
      "phase discover --mode local",
      "phase discover --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW… --json",
    ],
  },
  submit: {
    name: "submit",
    summary: "run a job on another node over libp2p, verify the receipt",
    usage: [
      "submit <module.wasm> (--peer PEER_ID | --auto) [options] [-- args…]",
    ],
    arguments: [
      ["<module.wasm>", "the WASI preview1 module to run"],
      ["args…", "arguments for the guest, after --"],
    ],
    flags: {
      ...CLIENT_FLAGS,
      peer: {
        type: "string",
        value: "PEER_ID",
        description: "the node to run the job on (this or --auto)",
        defaultText: "none",
      },
      auto: {
        type: "boolean",
        description:
          "run on the first capable node found, trying the next when one fails",
      },
      arch: ARCH_FILTER,
      memory: {
        type: "string",
        value: "MB",
        description: "memory the job needs, a positive whole number",
        defaultText: "the node's default",
      },
      "job-timeout": {
        type: "string",
        value: "SECONDS",
        description: "the job's wall-clock limit, a positive number",
        defaultText: "the node's default",
      },
      fuel: {
        type: "string",
        value: "N",
        description: "the job's fuel budget, a positive whole number",
        defaultText: "the node's default",
      },
      scratch: {
        type: "string",
        value: "GUEST=HOSTDIR",
        description:
          "send HOSTDIR as a writable in-memory directory at GUEST on the node (at most 8 MiB; nothing is written there; the receipt must name this seed)",
        defaultText: "none",
      },
      receipt: JOB_FLAGS.receipt,
      replicas: {
        type: "string",
        value: "N",
        description:
          "run on N distinct nodes and compare their receipts (with --auto)",
        defaultText: "1",
      },
      agree: {
        type: "string",
        value: "all|majority",
        description:
          "with --replicas: every receipt must agree, or more than half",
        defaultText: "all",
      },
      report: {
        type: "string",
        value: "FILE",
        description:
          "with --replicas: write the disagreement report to FILE when replicas differ",
        defaultText: "none",
      },
    },
    exits: JOB_EXITS,
    examples: [
      'phase submit examples/wasm/hello.wasm --auto --mode local -- "Hello, World!"',
      "phase submit job.wasm --auto --replicas 3 --agree majority --bootstrap /ip4/…",
    ],
  },
  run: {
    name: "run",
    summary: "run a WebAssembly module in the sandbox, stdin to the guest",
    usage: ["run <module.wasm> [options] [-- args…]"],
    arguments: [
      ["<module.wasm>", "the WASI preview1 module to run"],
      ["args…", "arguments for the guest, after -- (or after the module)"],
    ],
    flags: {
      ...NODE_FLAGS,
      dir: {
        type: "string",
        value: "HOST:GUEST[:rw]",
        multiple: true,
        default: [],
        description:
          "share host directory HOST with the guest at GUEST, read-only; with :rw the guest may change it (local runs only, not with --private; it cannot create symbolic links there)",
        defaultText: "none",
      },
      env: {
        type: "string",
        value: "K=V",
        multiple: true,
        default: [],
        description: "an environment variable for the guest",
        defaultText: "the job manifest's, else none",
      },
      ...LIMIT_FLAGS,
      "output-limit": {
        type: "string",
        value: "BYTES",
        description: `bytes kept per output stream, the rest cut: ${
          limitRangeText("outputBytes")
        }`,
        defaultText: String(DEFAULT_LIMITS.outputBytes),
      },
      scratch: {
        type: "string",
        value: "GUEST[=HOSTDIR]",
        description:
          "guest path of a writable in-memory scratch directory, discarded after the run; =HOSTDIR starts it as a copy of HOSTDIR (charged to --memory)",
        defaultText: "none",
      },
      ...JOB_FLAGS,
      json: {
        type: "boolean",
        description: "print the signed receipt as JSON instead of the output",
      },
      quiet: {
        type: "boolean",
        short: "q",
        description:
          "say nothing on stderr about the guest's error or cut output",
      },
    },
    exits: JOB_EXITS,
    examples: [
      'phase run examples/wasm/hello.wasm -- "Hello, World!"',
      "echo hi | phase run examples/wasm/hello.wasm --memory 64 --timeout 5 --receipt r.json",
      "phase run job.wasm --dir ./data:/data --scratch /tmp --private",
      "phase run tool.wasm --dir ./project:/work:rw",
      "phase run tool.wasm --scratch /work=./project --private",
    ],
  },
  "execute-job": {
    name: "execute-job",
    summary: "run a module and print its verified receipt",
    usage: ["execute-job --wasm FILE [--args ARG]… [options]"],
    arguments: [["[module.wasm]", "the module, when --wasm is not given"]],
    flags: {
      ...NODE_FLAGS,
      wasm: {
        type: "string",
        value: "FILE",
        description: "the WASI preview1 module to run",
        defaultText: "the first argument",
      },
      args: {
        type: "string",
        value: "ARG",
        multiple: true,
        default: [],
        description: "an argument for the guest",
        defaultText: "the job manifest's, else none",
      },
      ...LIMIT_FLAGS,
      ...JOB_FLAGS,
    },
    exits: [...JOB_EXITS, ["1", "also when the receipt does not verify"]],
    examples: [
      'phase execute-job --wasm examples/wasm/hello.wasm --args "Hello"',
    ],
  },
  receipt: {
    name: "receipt",
    summary: "check signed receipts",
    flags: {},
    subcommands: {
      verify: {
        name: "receipt verify",
        summary: "check a receipt's signature, and optionally its signer",
        usage: ["receipt verify FILE [options]"],
        arguments: [["FILE", "the receipt (JSON)"]],
        flags: {
          peer: {
            type: "string",
            value: "PEER_ID",
            description: "require this signer",
            defaultText: "any signer",
          },
          "module-hash": {
            type: "string",
            value: "sha256:HEX",
            description: "require this module",
            defaultText: "any module",
          },
          "input-hash": {
            type: "string",
            value: "sha256:HEX",
            description: "require this input",
            defaultText: "any input",
          },
          nonce: {
            type: "string",
            value: "NONCE",
            description: "require this nonce",
            defaultText: "any nonce",
          },
          json: {
            type: "boolean",
            description: "print the verdict as JSON",
          },
          quiet: {
            type: "boolean",
            short: "q",
            description: "print nothing for a valid receipt",
          },
        },
        exits: [["0", "valid"], ["1", "invalid or unreadable"]],
        examples: [
          "phase receipt verify r.json --peer 12D3KooW…",
        ],
      },
      compare: {
        name: "receipt compare",
        summary:
          "verify receipts of one job from several nodes and print where they differ",
        usage: ["receipt compare FILE FILE… [options]"],
        arguments: [[
          "FILE",
          "a receipt (JSON), or a disagreement report whose receipts are compared",
        ]],
        flags: {
          json: {
            type: "boolean",
            description: "print the comparison as JSON",
          },
        },
        exits: [
          ["0", "every signature verifies and all receipts agree"],
          ["1", "a receipt is invalid or unreadable, or they differ"],
        ],
        examples: [
          "phase receipt compare a.json b.json c.json",
          "phase receipt compare disagreement.json",
        ],
      },
    },
  },
  keygen: {
    name: "keygen",
    summary: "create an Ed25519 key file and print its peer id",
    usage: ["keygen [options]"],
    flags: {
      output: {
        ...OUTPUT_FILE,
        description: "where to write the key (its folder must exist)",
        defaultText: "DATA_DIR/node.key",
      },
      "data-dir": NODE_FLAGS["data-dir"],
      json: { type: "boolean", description: "print JSON" },
    },
    examples: ["phase keygen --output ~/.config/phase/release.key"],
  },
  manifest: {
    name: "manifest",
    summary: "boot manifests: generate, sign and verify",
    flags: {},
    subcommands: {
      generate: {
        name: "manifest generate",
        summary: "write an unsigned boot manifest for an artifacts directory",
        usage: ["manifest generate --artifacts DIR [options]"],
        flags: {
          artifacts: {
            type: "string",
            value: "DIR",
            short: "a",
            description: "the artifacts, in DIR/CHANNEL/ARCH",
            required: true,
          },
          channel: {
            type: "string",
            value: "CHANNEL",
            default: "stable",
            description: CHANNEL_VALUES,
          },
          arch: {
            type: "string",
            value: "ARCH",
            // Deno names its architectures canonically: x86_64 or aarch64.
            default: Deno.build.arch,
            description: ARCH_VALUES,
          },
          version: {
            type: "string",
            value: "VERSION",
            default: RUNTIME_VERSION,
            description: "the release the manifest describes",
          },
          "manifest-version": {
            type: "string",
            value: "N",
            description:
              "a positive whole number that only grows (verifiers refuse rollbacks)",
            defaultText: "the time in seconds",
          },
          cmdline: {
            type: "string",
            value: "TEXT",
            default: KERNEL_CMDLINE,
            description: "kernel command line",
          },
          "validity-days": {
            type: "string",
            value: "DAYS",
            default: "30",
            description: "days until the manifest expires",
          },
          output: {
            ...OUTPUT_FILE,
            description: "where to write it (- for standard output)",
            defaultText: "standard output",
          },
        },
        examples: [
          "phase manifest generate --artifacts build/artifacts --output build/artifacts/stable/x86_64/manifest.json",
        ],
      },
      sign: {
        name: "manifest sign",
        summary: "sign a boot manifest with a release key",
        usage: ["manifest sign FILE --key KEYFILE [options]"],
        arguments: [["FILE", "the manifest (a file or an http(s) URL)"]],
        flags: {
          key: RELEASE_KEY_FILE,
          output: {
            ...OUTPUT_FILE,
            description: "where to write it (- for standard output)",
            defaultText: "FILE itself",
          },
        },
        examples: [
          "phase manifest sign manifest.json --key ~/.config/phase/release.key",
        ],
      },
      verify: {
        name: "manifest verify",
        summary: "check a boot manifest's signatures against pinned keys",
        usage: ["manifest verify FILE|URL --pubkey KEY [options]"],
        arguments: [["FILE|URL", "the manifest"]],
        flags: {
          pubkey: TRUSTED_KEYS,
          "min-version": {
            type: "string",
            value: "N",
            description: "refuse a manifest_version below N (rollback)",
            defaultText: "any",
          },
          channel: {
            type: "string",
            value: "CHANNEL",
            description: "refuse a manifest for another channel",
            defaultText: "any",
          },
          arch: {
            type: "string",
            value: "ARCH",
            description: "refuse a manifest for another architecture",
            defaultText: "any",
          },
          json: {
            type: "boolean",
            description: "print the verdict as JSON",
          },
        },
        exits: [["0", "valid"], ["1", "invalid or unreadable"]],
        examples: [
          "phase manifest verify http://127.0.0.1:8080/manifest.json --pubkey 12D3KooW…",
        ],
      },
    },
  },
  provider: {
    name: "provider",
    summary: "ask a running provider",
    flags: {},
    subcommands: {
      status: {
        name: "provider status",
        summary: "print a provider's health, version and counters",
        usage: ["provider status [options]"],
        flags: {
          url: PROVIDER_URL,
          json: { type: "boolean", description: "print the status as JSON" },
        },
        exits: [["0", "healthy"], ["1", "unhealthy or unreachable"]],
        examples: ["phase provider status --url http://127.0.0.1:8080"],
      },
      list: {
        name: "provider list",
        summary: "list the artifacts in a provider's manifest",
        usage: ["provider list [options]"],
        flags: {
          url: PROVIDER_URL,
          channel: {
            type: "string",
            value: "CHANNEL",
            description: `the channel's manifest: ${CHANNEL_VALUES}`,
            defaultText: "the provider's own (stable with --arch)",
          },
          arch: {
            type: "string",
            value: "ARCH",
            description: "the architecture's manifest",
            defaultText: "the provider's own (x86_64 with --channel)",
          },
          json: {
            type: "boolean",
            description: "print the artifacts as JSON",
          },
        },
        examples: ["phase provider list --channel testing"],
      },
    },
  },
  fetch: {
    name: "fetch",
    summary: "download a file from mirrors and check its sha256",
    usage: ["fetch --url URL [--url URL]… --sha256 HEX --output FILE"],
    flags: {
      url: {
        type: "string",
        value: "URL",
        multiple: true,
        description: "a mirror, tried in order",
        required: true,
      },
      sha256: {
        type: "string",
        value: "HEX",
        description:
          "the file's sha256 (64 hex digits, sha256: prefix allowed)",
        required: true,
      },
      output: {
        ...OUTPUT_FILE,
        description: "where to write the file (its folder is created)",
        required: true,
      },
      json: {
        type: "boolean",
        description: "print the result as JSON",
      },
      quiet: {
        type: "boolean",
        short: "q",
        description: "no progress and no summary",
      },
    },
    examples: [
      "phase fetch --url http://127.0.0.1:8080/stable/x86_64/hello.wasm --sha256 HEX --output hello.wasm",
    ],
  },
  boot: {
    name: "boot",
    summary:
      "Phase Boot: build the initramfs and a disk image, or run inside it",
    flags: {},
    subcommands: {
      build: {
        name: "boot build",
        summary: "build the kernel, initramfs and optional boot artifacts",
        usage: ["boot build [options]"],
        flags: {
          "kernel-package": {
            type: "string",
            value: "DIR",
            description: "an unpacked Debian kernel package",
            defaultText: "Debian's, downloaded into --cache",
          },
          busybox: {
            type: "string",
            value: "FILE",
            description:
              "the busybox to ship (a dynamic one is copied with its libraries)",
            defaultText: "/bin/busybox",
          },
          cache: {
            type: "string",
            value: "DIR",
            description: "where downloads are kept",
            defaultText: "~/.cache/phase-boot",
          },
          output: {
            type: "string",
            value: "DIR",
            short: "o",
            description:
              "where the kernel (vmlinuz, or Image on aarch64) and the initramfs are written",
            defaultText: "build/boot, or build/boot/aarch64 for aarch64",
          },
          artifacts: {
            type: "string",
            value: "DIR",
            description:
              "also write an artifacts directory with a manifest, for phase serve",
            defaultText: "none",
          },
          channel: {
            type: "string",
            value: "CHANNEL",
            default: "stable",
            description: `the artifacts' channel: ${CHANNEL_VALUES}`,
          },
          arch: {
            type: "string",
            value: "ARCH",
            default: Deno.build.arch,
            description:
              "the machine to build for: x86_64 or aarch64 (amd64, arm64); another than this one takes its Debian packages and Deno build",
          },
          "sign-key": {
            type: "string",
            value: "FILE",
            description: "release key that signs the artifacts' manifest",
            defaultText: "unsigned",
          },
          cmdline: {
            type: "string",
            value: "TEXT",
            description: "kernel command line in the manifest",
            defaultText: `${KERNEL_CMDLINE} (console=ttyAMA0 on aarch64)`,
          },
          "manifest-version": {
            type: "string",
            value: "N",
            description: "the manifest's version",
            defaultText: "the time in seconds",
          },
          json: {
            type: "boolean",
            description: "print what was built as JSON, and no progress",
          },
        },
        examples: [
          "phase boot build --artifacts build/artifacts --sign-key release.key",
          "phase boot build --arch aarch64 --artifacts build/artifacts --sign-key release.key",
        ],
      },
      image: {
        name: "boot image",
        summary:
          "a disk image for USB sticks and VMs: GPT, BIOS and UEFI GRUB, kernel and initramfs",
        usage: ["boot image --pubkey KEY [options]"],
        flags: {
          pubkey: {
            type: "string",
            value: "KEY",
            multiple: true,
            description:
              "the release key (peer id) the booted machine pins (phase.pubkey)",
            required: true,
          },
          mode: {
            type: "string",
            value: "MODE",
            default: "local",
            description:
              "how the machine finds a provider: local (mDNS), internet (DHT) or private",
          },
          provider: {
            type: "string",
            value: "URL",
            description: "a provider to boot from (phase.provider)",
            defaultText: "found by --mode",
          },
          cmdline: {
            type: "string",
            value: "TEXT",
            default: KERNEL_CMDLINE,
            description:
              "the rest of the kernel command line (the phase.* options are added)",
          },
          kernel: {
            type: "string",
            value: "FILE",
            default: "build/boot/vmlinuz",
            description: "the kernel (from phase boot build)",
          },
          initramfs: {
            type: "string",
            value: "FILE",
            default: "build/boot/initramfs.img",
            description: "the initramfs (from phase boot build)",
          },
          output: {
            type: "string",
            value: "DIR",
            short: "o",
            default: "dist",
            description:
              "where phase-boot-x86_64.img and phase-boot-x86_64.qcow2 are written",
          },
          "no-qcow2": {
            type: "boolean",
            description: "write the raw image only",
          },
          json: {
            type: "boolean",
            description: "print what was built as JSON, and no progress",
          },
          quiet: { type: "boolean", short: "q", description: "no progress" },
        },
        examples: [
          "phase boot image --pubkey 12D3KooW… --mode local",
          "sudo dd if=dist/phase-boot-x86_64.img of=/dev/sdX bs=4M conv=fsync",
        ],
      },
      run: {
        name: "boot run",
        summary: "/init's job in the initramfs: find, verify, kexec",
        usage: ["boot run [--cmdline TEXT]"],
        flags: {
          cmdline: {
            type: "string",
            value: "TEXT",
            description: "the phase.* options to boot with",
            defaultText: "/proc/cmdline",
          },
        },
        exits: [
          ["0", "stage 1 planned the kexec (stage 2 serves until power-off)"],
          ["1", "the boot failed (a FAILED line says why)"],
        ],
        examples: ["phase boot run --cmdline 'phase.mode=local'"],
      },
    },
  },
  release: {
    name: "release",
    summary: "the .deb, and a signed release: build and verify",
    flags: {},
    subcommands: {
      deb: {
        name: "release deb",
        summary:
          "build phase_VERSION_amd64.deb (runtime, program, launcher, phase.service)",
        usage: ["release deb [options]"],
        flags: {
          output: {
            type: "string",
            value: "DIR",
            short: "o",
            default: "dist",
            description: "where the .deb is written",
          },
          json: {
            type: "boolean",
            description: "print what was built as JSON, and no progress",
          },
          quiet: { type: "boolean", short: "q", description: "no progress" },
        },
        examples: [
          "SOURCE_DATE_EPOCH=1767225600 phase release deb --output dist",
        ],
      },
      build: {
        name: "release build",
        summary:
          "a signed release: the .deb, kernel, initramfs, boot manifest, disk images, SHA256SUMS",
        usage: ["release build --key KEYFILE [options]"],
        flags: {
          key: RELEASE_KEY_FILE,
          output: {
            type: "string",
            value: "DIR",
            short: "o",
            default: "dist",
            description:
              "the release folder (replaced if it holds an earlier release)",
          },
          mode: {
            type: "string",
            value: "MODE",
            default: "local",
            description: "the disk image's phase.mode",
          },
          provider: {
            type: "string",
            value: "URL",
            description: "the disk image's phase.provider",
            defaultText: "found by --mode",
          },
          cmdline: {
            type: "string",
            value: "TEXT",
            default: KERNEL_CMDLINE,
            description: "kernel command line (manifest and disk image)",
          },
          "kernel-package": {
            type: "string",
            value: "DIR",
            description: "an unpacked Debian kernel package",
            defaultText: "Debian's, downloaded into --cache",
          },
          cache: {
            type: "string",
            value: "DIR",
            description: "where downloads are kept",
            defaultText: "~/.cache/phase-boot",
          },
          json: {
            type: "boolean",
            description: "print what was built as JSON, and no progress",
          },
          quiet: { type: "boolean", short: "q", description: "no progress" },
        },
        examples: ["phase release build --key release.key"],
      },
      verify: {
        name: "release verify",
        summary:
          "check a release folder: signature, every file's sha256, nothing added",
        usage: ["release verify DIR --pubkey KEY [options]"],
        arguments: [["DIR", "the release folder"]],
        flags: {
          pubkey: TRUSTED_KEYS,
          json: {
            type: "boolean",
            description: "print the verdict as JSON",
          },
        },
        exits: [["0", "valid"], ["1", "invalid or unreadable"]],
        examples: ["phase release verify dist --pubkey 12D3KooW…"],
      },
    },
  },
  version: {
    name: "version",
    summary: "print the version",
    usage: ["version [--json]"],
    flags: {
      json: {
        type: "boolean",
        description: "print name, version, Deno and WASI versions as JSON",
      },
    },
    examples: ["phase version --json"],
  },
  help: {
    name: "help",
    summary: "show the commands, or a command's options",
    usage: ["help [command [subcommand]]"],
    arguments: [["command", "the command to describe"]],
    flags: {},
    exits: HELP_EXITS,
    examples: ["phase help run", "phase manifest sign --help"],
  },
  completions: {
    name: "completions",
    summary: "print a shell completion script: bash, zsh or fish",
    usage: ["completions bash|zsh|fish"],
    arguments: [["bash|zsh|fish", "the shell"]],
    flags: {},
    exits: [["0", "script printed"]],
    examples: [
      "source <(phase completions bash)",
      "source <(phase completions zsh)",
      "phase completions fish > ~/.config/fish/completions/phase.fish",
    ],
  },
} as const satisfies Readonly<Record<string, CommandSpec>>;

/** Every top-level command, in the order `phase help` lists them. */
export const TOP_LEVEL: readonly CommandSpec[] = Object.values(COMMANDS);

/** A command that runs: a top-level command or a subcommand. */
export type RunnableOf<C> = C extends { subcommands: infer S }
  ? { [K in keyof S]: RunnableOf<S[K]> }[keyof S]
  : C extends { name: infer N } ? N
  : never;

/** The name of every command that runs (`run`, `manifest sign`, …). */
export type RunnableName = RunnableOf<
  (typeof COMMANDS)[keyof typeof COMMANDS]
>;
