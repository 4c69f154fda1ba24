/**
 * The Debian package as users get it (`deno task package:deb`): built twice
 * with one SOURCE_DATE_EPOCH to the same bytes, lintian-clean, its
 * phase.service verified by systemd-analyze with an exposure of at most
 * 3.0, and its maintainer scripts run by dpkg in a Debian root (install,
 * upgrade, remove, purge). The real service in a booted systemd is
 * tests/deb_vm_test.ts.
 */
import assert from "node:assert/strict";
import { copyRoot, debianRoot, packageDeb } from "./debian_root.ts";
import {
  aptInstall,
  hasCommand,
  ROOT,
  runOk,
  tempDir,
  text,
} from "./helpers.ts";

async function ensureTools(): Promise<void> {
  const missing = [];
  for (
    const [command, pkg] of [
      ["lintian", "lintian"],
      ["dpkg-deb", "dpkg"],
      ["systemd-analyze", "systemd"],
    ]
  ) {
    if (!await hasCommand(command)) missing.push(pkg);
  }
  await aptInstall(missing, "package tests");
}

Deno.test({
  name:
    "deb: reproducible, lintian without errors, phase.service verified with exposure ≤ 3.0, maintainer scripts install/upgrade/remove/purge",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureTools();
    const [dir, cleanup] = await tempDir();
    try {
      const first = await packageDeb(dir, `${dir}/a`);
      assert.match(first.path, /\/phase_\d+\.\d+\.\d+_amd64\.deb$/);

      await t.step(
        "reproducible: a second build is the same bytes",
        async () => {
          const second = await packageDeb(dir, `${dir}/b`);
          assert.equal(second.sha256, first.sha256);
        },
      );

      await t.step("lintian reports no errors", async () => {
        const out = await new Deno.Command("lintian", {
          args: ["--tag-display-limit", "0", first.path],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const report = text(out.stdout);
        assert.doesNotMatch(report, /^E: /m, report);
        assert.equal(out.code, 0, report + text(out.stderr));
      });

      const root = await copyRoot(
        await debianRoot(console.error),
        `${dir}/root`,
      );
      const chroot = (...args: string[]) => runOk("chroot", [root, ...args]);
      const exists = async (path: string) => {
        try {
          await Deno.lstat(`${root}${path}`);
          return true;
        } catch {
          return false;
        }
      };
      await Deno.copyFile(first.path, `${root}/tmp/phase.deb`);

      await t.step("install: files, launcher, enabled unit", async () => {
        await chroot("dpkg", "-i", "/tmp/phase.deb");
        // Deno needs /proc: a private one, in a mount namespace of its own.
        const version = await runOk("unshare", [
          "--fork",
          "--pid",
          `--mount-proc=${root}/proc`,
          "chroot",
          root,
          "/usr/bin/phase",
          "version",
        ]);
        assert.match(version, /^phase \d+\.\d+\.\d+ \(deno 2\.9\.6/);
        assert.ok(
          await exists(
            "/etc/systemd/system/multi-user.target.wants/phase.service",
          ),
          "postinst enables phase.service",
        );
        assert.ok(await exists("/etc/phase/phase.conf"));
      });

      await t.step(
        "systemd-analyze verify and security (exposure ≤ 3.0)",
        async () => {
          await runOk("systemd-analyze", [
            "verify",
            `--root=${root}`,
            "phase.service",
          ]);
          const report = await runOk("systemd-analyze", [
            "security",
            "--offline=true",
            `--root=${root}`,
            "phase.service",
          ]);
          const exposure = Number(
            report.match(/Overall exposure level for phase\.service: ([\d.]+)/)
              ?.[1],
          );
          console.log(`phase.service exposure: ${exposure}`);
          assert.ok(exposure <= 3.0, report);
        },
      );

      // What the running service would have made: the key, a receipt.
      const state = "/var/lib/private/phase";
      await Deno.mkdir(`${root}${state}/receipts`, { recursive: true });
      await Deno.writeTextFile(`${root}${state}/node.key`, "the node key");
      await Deno.symlink("private/phase", `${root}/var/lib/phase`);
      await Deno.writeTextFile(
        `${root}/etc/phase/phase.conf`,
        "\nPHASE_OPTIONS=--no-jobs\n",
        { append: true },
      );

      await t.step(
        "upgrade (reinstall): key, state and edited conffile kept",
        async () => {
          await chroot("dpkg", "-i", "/tmp/phase.deb");
          assert.equal(
            await Deno.readTextFile(`${root}${state}/node.key`),
            "the node key",
          );
          assert.match(
            await Deno.readTextFile(`${root}/etc/phase/phase.conf`),
            /PHASE_OPTIONS=--no-jobs/,
          );
        },
      );

      await t.step(
        "remove: program gone, state and conffile kept",
        async () => {
          await chroot("dpkg", "-r", "phase");
          assert.ok(!await exists("/usr/bin/phase"));
          assert.ok(!await exists("/usr/lib/phase/deno"));
          assert.ok(await exists(`${state}/node.key`));
          assert.ok(await exists("/etc/phase/phase.conf"));
        },
      );

      await t.step("purge: state, conffile and unit links gone", async () => {
        await chroot("dpkg", "-P", "phase");
        for (
          const path of [
            state,
            "/var/lib/phase",
            "/etc/phase",
            "/etc/systemd/system/multi-user.target.wants/phase.service",
            "/etc/systemd/system/phase.service",
          ]
        ) {
          assert.ok(!await exists(path), `${path} is left after purge`);
        }
        assert.doesNotMatch(await chroot("dpkg", "-l"), /^\S+\s+phase\s/m);
      });
    } finally {
      await cleanup();
    }
  },
});

Deno.test("launcher: an installed bundle gets deno.json's unstable features as flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const launcher = await Deno.readTextFile(`${ROOT}/phase`);
  const line =
    launcher.match(/program=\((--unstable[^)]*)"\$root\/phase\.js"\)/)
      ?.[1] ?? "";
  const flags = line.trim().split(/\s+/).filter(Boolean).sort();
  assert.deepEqual(
    flags,
    (config.unstable as string[]).map((name) => `--unstable-${name}`).sort(),
  );
});
