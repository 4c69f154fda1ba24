/**
 * The hand-over across kexec (boot/handover.ts), without a VM: the initrd
 * stage 1 writes is a cpio archive that cpio(1) reads, followed by the
 * initramfs byte for byte; stage 2 takes a hand-over that verifies and
 * fetches nothing; a tampered one (manifest altered, signed by another key,
 * expired, below the floor, oversized, a file altered or swapped for a
 * link) is refused and the network's verified copy is used instead.
 */
import assert from "node:assert/strict";
import {
  parseBootOptions,
  readHandoverManifest,
  stageTwoInputs,
  takeHandedOver,
  writeArtifacts,
  writeHandoverInitrd,
} from "../boot/mod.ts";
import {
  type BootManifest,
  generateKey,
  type NodeKey,
  parsePublicKey,
  signManifest,
  validateBootManifest,
} from "../schemas/mod.ts";
import { sha256File } from "../provider/mod.ts";

interface Setup {
  dir: string;
  release: NodeKey;
  manifest: BootManifest;
  artifacts: string;
  url: string;
  requests: string[];
  close: () => Promise<void>;
}

/** A signed release (tiny kernel and initramfs, the hello job) served on loopback, counting requests. */
async function setup(validityDays = 30): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "phase-handover-" });
  await Deno.writeFile(
    `${dir}/vmlinuz`,
    crypto.getRandomValues(new Uint8Array(4000)),
  );
  await Deno.writeFile(
    `${dir}/initramfs.img`,
    crypto.getRandomValues(new Uint8Array(6001)),
  );
  const release = await generateKey();
  const artifacts = `${dir}/artifacts`;
  const folder = await writeArtifacts({
    dir: artifacts,
    channel: "stable",
    arch: "x86_64",
    kernel: `${dir}/vmlinuz`,
    initramfs: `${dir}/initramfs.img`,
    cmdline: "console=ttyS0",
    releaseKey: release,
    manifestVersion: 1000,
    validityDays,
  });
  const manifest = validateBootManifest(
    JSON.parse(await Deno.readTextFile(`${folder}/manifest.json`)),
  );
  const requests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      requests.push(path);
      if (!/^\/stable\/x86_64\/[A-Za-z0-9._-]+$/.test(path)) {
        return new Response("no", { status: 404 });
      }
      try {
        return new Response(await Deno.readFile(`${artifacts}${path}`));
      } catch {
        return new Response("no", { status: 404 });
      }
    },
  );
  return {
    dir,
    release,
    manifest,
    artifacts: folder,
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The hand-over folder stage 2 would find: stage 1's initrd unpacked by cpio(1). */
async function handOver(s: Setup, manifest = s.manifest): Promise<string> {
  const initrd = `${s.dir}/initrd.img`;
  await writeHandoverInitrd({
    manifest,
    files: {
      "hello.wasm": `${s.artifacts}/hello.wasm`,
      "hello.job.json": `${s.artifacts}/hello.job.json`,
    },
    initramfs: `${s.artifacts}/initramfs.img`,
    output: initrd,
  });
  const root = await Deno.makeTempDir({ dir: s.dir, prefix: "root-" });
  const out = await new Deno.Command("cpio", {
    args: ["-i", "-d", "--quiet"],
    cwd: root,
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(await Deno.readFile(initrd));
  await writer.close();
  assert.deepStrictEqual((await out.output()).code, 0);
  return `${root}/handover`;
}

function stageTwoOptions(s: Setup, extra = "") {
  return parseBootOptions(
    `phase.stage=2 phase.provider=${s.url} phase.pubkey=${s.release.peerId} phase.arch=x86_64 phase.min_version=1000 ${extra}`,
  );
}

async function inputs(s: Setup, handoverDir: string, extra = "") {
  const lines: string[] = [];
  const runDir = await Deno.makeTempDir({ dir: s.dir, prefix: "run-" });
  const result = await stageTwoInputs(stageTwoOptions(s, extra), {
    runDir,
    log: (line) => lines.push(line),
    kexec: () => Promise.resolve(),
    handoverDir,
  });
  for (const [name, path] of Object.entries(result.paths)) {
    assert.deepStrictEqual(
      await sha256File(path),
      result.manifest.artifacts[name].sha256,
    );
  }
  return { result, lines };
}

Deno.test("handover: the initrd is a cpio archive of the verified files, then the initramfs byte for byte", async () => {
  const s = await setup();
  try {
    const handover = await handOver(s);
    assert.deepStrictEqual(
      await Deno.readFile(`${handover}/hello.wasm`),
      await Deno.readFile(`${s.artifacts}/hello.wasm`),
    );
    const manifest = JSON.parse(
      await Deno.readTextFile(`${handover}/manifest.json`),
    );
    assert.deepStrictEqual(manifest, s.manifest);
    const initrd = await Deno.readFile(`${s.dir}/initrd.img`);
    const initramfs = await Deno.readFile(`${s.artifacts}/initramfs.img`);
    const at = initrd.length - initramfs.length;
    // The kernel looks for the next archive on a 4-byte boundary.
    assert.deepStrictEqual(at % 4, 0);
    assert.deepStrictEqual(initrd.subarray(at), initramfs);
    assert.deepStrictEqual(
      new TextDecoder().decode(initrd.subarray(0, 6)),
      "070701",
    );
  } finally {
    await s.close();
  }
});

Deno.test("handover: a verified hand-over is used and nothing is fetched", async () => {
  const s = await setup();
  try {
    const { lines, result } = await inputs(s, await handOver(s));
    assert.deepStrictEqual(s.requests, []);
    assert.deepStrictEqual(Object.keys(result.paths).sort(), [
      "hello.job.json",
      "hello.wasm",
    ]);
    assert.ok(
      lines.some((l) => /handed over by stage 1/.test(l)),
      lines.join("\n"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("handover: a tampered manifest is refused and the network's is used", async () => {
  const s = await setup();
  try {
    const other = await generateKey();
    const unsigned = { ...s.manifest, signatures: [] };
    const cases: [string, BootManifest | string, RegExp][] = [
      [
        "altered",
        { ...s.manifest, cmdline: "console=ttyS0 init=/bin/sh" },
        /signature|signed/i,
      ],
      [
        "signed by another key",
        await signManifest(unsigned, other),
        /key|signed|signature/i,
      ],
      ["not JSON", "{ nope", /not JSON/],
      ["oversized", " ".repeat(1024 * 1024 + 1), /larger than/],
    ];
    for (const [what, manifest, reason] of cases) {
      s.requests.length = 0;
      const dir = await handOver(s);
      await Deno.writeTextFile(
        `${dir}/manifest.json`,
        typeof manifest === "string" ? manifest : JSON.stringify(manifest),
      );
      const { lines, result } = await inputs(s, dir);
      const refused = lines.find((l) => l.startsWith("hand-over refused"));
      assert.ok(refused, `${what}: ${lines.join("\n")}`);
      assert.match(refused, reason, what);
      assert.ok(s.requests.includes("/stable/x86_64/manifest.json"), what);
      assert.deepStrictEqual(result.manifest, s.manifest, what);
    }
  } finally {
    await s.close();
  }
});

Deno.test("handover: an expired manifest, or one below the rollback floor, is refused", async () => {
  const expired = await setup(-1);
  try {
    const verdict = await readHandoverManifest(await handOver(expired), {
      trustedKeys: [parsePublicKey(expired.release.peerId)],
      channel: "stable",
      arch: "x86_64",
    });
    assert.ok(verdict && "refused" in verdict);
    assert.match(verdict.refused, /expired/);
  } finally {
    await expired.close();
  }
  const s = await setup();
  try {
    const verdict = await readHandoverManifest(await handOver(s), {
      trustedKeys: [parsePublicKey(s.release.peerId)],
      minVersion: 1001,
      channel: "stable",
      arch: "x86_64",
    });
    assert.ok(verdict && "refused" in verdict);
    assert.match(verdict.refused, /1001|floor|version/);
  } finally {
    await s.close();
  }
});

Deno.test("handover: an altered, resized or linked file is refused, never used, and fetched instead", async () => {
  const s = await setup();
  try {
    const tamper: [string, (path: string) => Promise<void>][] = [
      ["one byte altered", async (path) => {
        const bytes = await Deno.readFile(path);
        bytes[100] ^= 1;
        await Deno.writeFile(path, bytes);
      }],
      ["resized", async (path) => {
        await Deno.writeFile(path, new Uint8Array([0]), { append: true });
      }],
      ["a link to the right bytes elsewhere", async (path) => {
        await Deno.remove(path);
        await Deno.symlink(`${s.artifacts}/hello.wasm`, path);
      }],
    ];
    for (const [what, change] of tamper) {
      s.requests.length = 0;
      const dir = await handOver(s);
      await change(`${dir}/hello.wasm`);
      const { lines } = await inputs(s, dir);
      assert.ok(
        lines.some((l) => l.startsWith("hello.wasm: hand-over refused")),
        `${what}: ${lines.join("\n")}`,
      );
      assert.deepStrictEqual(s.requests, ["/stable/x86_64/hello.wasm"], what);
      // The refused file is gone from the hand-over.
      let left = true;
      await Deno.lstat(`${dir}/hello.wasm`).catch(() => left = false);
      assert.deepStrictEqual(left, false, what);
    }
  } finally {
    await s.close();
  }
});

Deno.test("handover: takeHandedOver leaves nothing at the output when the hash differs", async () => {
  const s = await setup();
  try {
    const dir = await handOver(s);
    await Deno.writeFile(
      `${dir}/hello.wasm`,
      new Uint8Array(s.manifest.artifacts["hello.wasm"].size),
    );
    const output = `${s.dir}/out.wasm`;
    const took = await takeHandedOver(
      dir,
      s.manifest.artifacts["hello.wasm"],
      output,
    );
    assert.ok(typeof took === "object" && /sha256/.test(took.refused));
    let exists = true;
    await Deno.lstat(output).catch(() => exists = false);
    assert.deepStrictEqual(exists, false);
    assert.deepStrictEqual(
      await takeHandedOver(dir, s.manifest.artifacts["hello.wasm"], output),
      "absent",
    );
  } finally {
    await s.close();
  }
});

Deno.test("handover: a hand-over folder that is a link is not read, and nothing it points to is taken or removed", async () => {
  const s = await setup();
  try {
    // Files that would verify, behind a link in place of the folder.
    const real = await handOver(s);
    const link = `${s.dir}/handover-link`;
    await Deno.symlink(real, link);
    const { lines } = await inputs(s, link);
    assert.ok(
      lines.some((l) => /hand-over refused: .* is not a directory/.test(l)),
      lines.join("\n"),
    );
    assert.ok(s.requests.includes("/stable/x86_64/manifest.json"));
    assert.ok(s.requests.includes("/stable/x86_64/hello.wasm"));
    // Untouched where the link pointed.
    assert.ok((await Deno.lstat(`${real}/hello.wasm`)).isFile);
  } finally {
    await s.close();
  }
});
