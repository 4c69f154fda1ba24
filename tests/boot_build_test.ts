/**
 * The initramfs build on any Debian host: the ELF check that tells static
 * from dynamic executables, and a build with Debian's dynamically linked
 * busybox (extracted from its package, never installed), whose libraries
 * must land in the image: the build runs each shipped program inside the
 * staged tree and fails if one cannot start.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildInitramfs, ElfError, elfInterpreter } from "../boot/mod.ts";
import { buildImages, ensureBootTools } from "./boot_harness.ts";
import { ROOT, runOk, tempDir } from "./helpers.ts";

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
