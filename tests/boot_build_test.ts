/**
 * The initramfs build on any Debian host: the ELF check that tells static
 * from dynamic executables, and a build with Debian's dynamically linked
 * busybox (extracted from its package, never installed), whose libraries
 * must land in the image: the build runs each shipped program inside the
 * staged tree and fails if one cannot start.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildInitramfs,
  ElfError,
  elfInterpreter,
  elfMachine,
  elfNeeded,
} from "../boot/mod.ts";
import { buildImages, ensureBootTools } from "./boot_harness.ts";
import { ROOT, runOk, tempDir } from "./helpers.ts";
import { sha256File } from "../provider/mod.ts";

Deno.test("elf: static and dynamic executables are told apart; anything else is an ElfError", async () => {
  await ensureBootTools();
  // glibc's ldconfig is static-pie; Deno and kexec are dynamic.
  assert.equal(elfInterpreter(await Deno.readFile("/sbin/ldconfig")), null);
  const dynamic = elfInterpreter(await Deno.readFile(Deno.execPath()));
  assert.match(dynamic ?? "", /^\/lib.*\/ld-linux.*\.so\.\d$/);
  const kexec = elfInterpreter(await Deno.readFile("/usr/sbin/kexec"));
  assert.notEqual(kexec, null);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        elfInterpreter(bytes);
      } catch (error) {
        assert.ok(error instanceof ElfError, String(error));
      }
    }),
    { numRuns: 500, seed: 11 },
  );
  // A real ELF header cut short is refused, not misread.
  const head = (await Deno.readFile(Deno.execPath())).subarray(0, 80);
  assert.throws(() => elfInterpreter(head), ElfError);
});

Deno.test("elf: the libraries an executable names and its machine agree with ldd, without running it", async () => {
  await ensureBootTools();
  for (const program of [Deno.execPath(), "/usr/sbin/kexec"]) {
    const bytes = await Deno.readFile(program);
    assert.equal(elfMachine(bytes), Deno.build.arch === "x86_64" ? 62 : 183);
    const direct = elfNeeded(bytes);
    assert.ok(direct.includes("libc.so.6"), `${program}: ${direct}`);
    // ldd lists the whole closure; every direct need is in it.
    const listed = await runOk("ldd", [program]);
    for (const soname of direct) {
      assert.match(
        listed,
        new RegExp(`(^|/|\\s)${soname.replaceAll(".", "\\.")}`, "m"),
      );
    }
  }
  assert.deepEqual(elfNeeded(await Deno.readFile("/sbin/ldconfig")), []);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      for (const read of [elfNeeded, elfMachine]) {
        try {
          read(bytes);
        } catch (error) {
          assert.ok(error instanceof ElfError, String(error));
        }
      }
    }),
    { numRuns: 500, seed: 12 },
  );
  // A real executable with bytes of its headers changed reads or is refused.
  const kexec = await Deno.readFile("/usr/sbin/kexec");
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(4095), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (changes) => {
        const bytes = kexec.slice();
        for (const [at, value] of changes) bytes[at] = value;
        try {
          elfNeeded(bytes);
          elfInterpreter(bytes);
        } catch (error) {
          assert.ok(error instanceof ElfError, String(error));
        }
      },
    ),
    { numRuns: 300, seed: 13 },
  );
  // A real executable cut inside its dynamic section is refused, not misread.
  const deno = await Deno.readFile(Deno.execPath());
  for (const length of [4096, 65536]) {
    try {
      elfNeeded(deno.subarray(0, length));
    } catch (error) {
      assert.ok(error instanceof ElfError, String(error));
    }
  }
});

Deno.test({
  name:
    "boot build: a dynamically linked busybox ships with its libraries and runs inside the image",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await ensureBootTools();
    const [dir, cleanup] = await tempDir();
    try {
      // Debian's `busybox` package is the dynamic build; take its binary
      // without installing it (installing would remove busybox-static).
      await runOk("apt-get", ["download", "busybox"], dir).catch(async () => {
        await runOk("apt-get", ["update", "-qq"]);
        await runOk("apt-get", ["download", "busybox"], dir);
      });
      const deb = [...Deno.readDirSync(dir)].find((e) =>
        e.name.startsWith("busybox_") && e.name.endsWith(".deb")
      );
      assert.ok(deb, "apt-get download busybox left no package");
      await runOk("dpkg-deb", ["-x", `${dir}/${deb.name}`, `${dir}/pkg`]);
      const busybox = `${dir}/pkg/bin/busybox`;
      assert.notEqual(
        elfInterpreter(await Deno.readFile(busybox)),
        null,
        "Debian's busybox package is expected to be dynamically linked",
      );
      const { modules } = await buildImages(`${dir}/static`);
      const lines: string[] = [];
      const built = await buildInitramfs({
        modules,
        output: `${dir}/dynamic`,
        root: ROOT,
        busybox,
        log: (line) => lines.push(line),
      });
      assert.ok(
        lines.some((l) => /dynamically linked; copying its libraries/.test(l)),
      );
      assert.ok(
        lines.some((l) =>
          /busybox, kexec and deno run inside the initramfs/.test(l)
        ),
      );
      const listing = await runOk("sh", [
        "-c",
        `zstd -dc ${built.path} | cpio -t --quiet`,
      ]);
      const needed = (await runOk("ldd", [busybox])).matchAll(
        /(\/[^\s]+) \(0x/g,
      );
      for (const [, library] of needed) {
        const name = library.split("/").pop()!;
        assert.ok(
          listing.split("\n").some((entry) => entry.endsWith(`/${name}`)),
          `the image lacks ${library}`,
        );
      }
    } finally {
      await cleanup();
    }
  },
});

Deno.test({
  name:
    "boot build: the image carries Deno's caches for the bundle and is the same bytes when built again",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await ensureBootTools();
    const [dir, cleanup] = await tempDir();
    try {
      const { modules } = await buildImages(`${dir}/first`);
      const lines: string[] = [];
      const again = await buildInitramfs({
        modules,
        output: `${dir}/second`,
        root: ROOT,
        log: (line) => lines.push(line),
      });
      const baked = lines.find((l) => l.startsWith("baked Deno's"));
      assert.ok(baked, lines.join("\n"));
      assert.match(baked, /: [1-9]\d* entries/);
      assert.equal(
        await sha256File(`${dir}/first/initramfs.img`),
        again.sha256,
        "two builds of the same tree differ",
      );
      const listing = await runOk("sh", [
        "-c",
        `zstd -dc ${again.path} | cpio -t --quiet`,
      ]);
      for (
        const path of [
          "phase/main.js",
          "phase/sandbox_worker.js",
          "phase/deno/v8_code_cache_v2",
          "phase/deno/dep_analysis_cache_v2",
          "etc/phase-files",
        ]
      ) {
        assert.ok(
          listing.split("\n").includes(path),
          `the image lacks ${path}`,
        );
      }
    } finally {
      await cleanup();
    }
  },
});
