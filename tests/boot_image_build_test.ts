/**
 * `phase boot image` without booting (tests/boot_image_test.ts boots it):
 * the partition table, GRUB's BIOS pointers, the ESP's files and grub.cfg,
 * read back from the image file with sgdisk and mtools; and the operator
 * mistakes it refuses with one line.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { grubConfig, imageCmdline } from "../boot/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { ensureImageTools } from "./boot_harness.ts";
import { runLauncher, runOk, tempDir } from "./helpers.ts";

Deno.test({
  name:
    "boot image: GPT with BIOS boot and ESP, GRUB's BIOS pointers, the ESP's files; bad keys, URLs and missing kernels refused in one line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await ensureImageTools({ ovmf: false });
    const [dir, cleanup] = await tempDir();
    try {
      const key = await generateKey();
      const kernel = crypto.getRandomValues(new Uint8Array(65536));
      await Deno.writeFile(`${dir}/vmlinuz`, kernel);
      await Deno.writeFile(`${dir}/initramfs.img`, new Uint8Array(100_000));
      const build = (extra: string[]) =>
        runLauncher(dir, [
          "boot",
          "image",
          "--kernel",
          `${dir}/vmlinuz`,
          "--initramfs",
          `${dir}/initramfs.img`,
          "--output",
          `${dir}/out`,
          ...extra,
        ]);
      const out = await build([
        "--pubkey",
        key.peerId,
        "--provider",
        "http://10.77.0.1:8080",
        "--json",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stderr, "", "--json prints no progress");
      const built = JSON.parse(out.stdout);
      assert.equal(
        built.cmdline,
        `console=ttyS0 panic=-1 phase.mode=local phase.pubkey=${key.peerId} phase.provider=http://10.77.0.1:8080`,
      );
      const image = `${dir}/out/phase-boot-x86_64.img`;
      const table = await runOk("sgdisk", ["--print", image]);
      assert.match(table, /^\s+1\s+2048\s+4095\s.*EF02/m);
      assert.match(table, /^\s+2\s+4096\s+\d+\s.*EF00/m);
      await runOk("qemu-img", ["check", `${dir}/out/phase-boot-x86_64.qcow2`]);
      // GRUB's boot sector points at the core, the core at its second sector.
      const bytes = await Deno.readFile(image);
      const view = new DataView(bytes.buffer);
      assert.equal(view.getBigUint64(0x5c, true), 2048n);
      assert.equal(view.getBigUint64(2048 * 512 + 500, true), 2049n);
      assert.equal(view.getUint16(510, true), 0xaa55);
      // The ESP, read from the file at its offset.
      const esp = `${image}@@${4096 * 512}`;
      const env = { MTOOLS_SKIP_CHECK: "1" };
      const read = async (name: string) => {
        const child = await new Deno.Command("mtype", {
          args: ["-i", esp, `::/${name}`],
          env,
          stdout: "piped",
        }).output();
        assert.equal(child.code, 0, name);
        return child.stdout;
      };
      assert.deepEqual(await read("vmlinuz"), kernel);
      assert.equal(
        new TextDecoder().decode(await read("boot/grub/grub.cfg")),
        grubConfig(built.cmdline),
      );
      const efi = await read("EFI/BOOT/BOOTX64.EFI");
      assert.equal(String.fromCharCode(efi[0], efi[1]), "MZ");

      for (
        const [extra, code, reason] of [
          [["--pubkey", "not-a-key"], 2, /--pubkey: /],
          [["--pubkey", key.peerId, "--provider", "ftp://x"], 1, /http\(s\)/],
          [["--pubkey", key.peerId, "--mode", "cloud"], 1, /phase\.mode/],
          [
            ["--pubkey", key.peerId, "--cmdline", "quiet;reboot"],
            1,
            /may not hold/,
          ],
          [
            ["--pubkey", key.peerId, "--kernel", `${dir}/none`],
            1,
            /run phase boot build first/,
          ],
        ] as const
      ) {
        const bad = await build([...extra]);
        assert.equal(bad.code, code, `${extra.join(" ")}: ${bad.stderr}`);
        assert.match(bad.stderr, reason);
        assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
        assert.match(bad.stderr, /^phase: /);
      }
    } finally {
      await cleanup();
    }
  },
});

Deno.test("image command line: the booted machine reads back the key, mode and provider it was given", async () => {
  const key = await generateKey();
  fc.assert(
    fc.property(
      fc.constantFrom("local", "internet", "private"),
      fc.option(fc.webUrl({ validSchemes: ["http", "https"] }), {
        nil: undefined,
      }),
      (mode, provider) => {
        // phase.* words of the base never override what was asked for.
        const cmdline = imageCmdline({
          base: "console=ttyS0 phase.mode=evil phase.pubkey=12D3KooWevil",
          pubkeys: [key.peerId],
          mode,
          provider,
        });
        assert.ok(!cmdline.includes("evil"));
        assert.match(cmdline, new RegExp(`phase\\.mode=${mode}( |$)`));
        assert.ok(cmdline.includes(`phase.pubkey=${key.peerId}`));
        if (provider) assert.ok(cmdline.includes(`phase.provider=${provider}`));
      },
    ),
    { numRuns: 200, seed: 16 },
  );
});
