/**
 * The .deb in a real systemd: a Debian root (debootstrap, minbase +
 * systemd-sysv) on an ext4 disk booted in QEMU with the Debian kernel. The
 * test installs the package with apt, and from the host (on the lab's test
 * network) checks /health, runs a job with POST /jobs and verifies the
 * receipt is signed by the service's key; `systemctl restart` and an
 * upgrade (reinstall) keep that peer id; `apt purge` removes the state.
 */
import assert from "node:assert/strict";
import { debianKernel, kernelFiles } from "../boot/mod.ts";
import { ensureBootTools, Lab } from "./boot_harness.ts";
import { copyRoot, debianRoot, packageDeb } from "./debian_root.ts";
import {
  aptInstall,
  freshHomeEnv,
  hasCommand,
  ROOT,
  tempDir,
  text,
} from "./helpers.ts";
import { buildSystemdDisk, GUEST_ADDRESS, SystemdVm } from "./systemd_vm.ts";

const BASE = `http://${GUEST_ADDRESS}:8080`;

Deno.test({
  name:
    "deb in a systemd VM: apt install starts phase.service, /health and a signed job from the host, restart and upgrade keep the peer id, purge removes the state",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureBootTools();
    const missing = [];
    if (!await hasCommand("mkfs.ext4")) missing.push("e2fsprogs");
    if (!await hasCommand("modinfo")) missing.push("kmod");
    await aptInstall(missing, "systemd VM tests");
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    let vm: SystemdVm | null = null;
    try {
      const started = performance.now();
      const deb = await packageDeb(dir, `${dir}/dist`);
      const cache = `${Deno.env.get("HOME") ?? "/tmp"}/.cache/phase-boot`;
      const { kernel, modules } = kernelFiles(await debianKernel(cache));
      const root = await copyRoot(
        await debianRoot(console.error),
        `${dir}/root`,
      );
      const disk = await buildSystemdDisk({
        root,
        files: { "/root/phase.deb": deb.path },
        kernel,
        modules,
        dir,
      });
      console.log(
        `deb, root and disk ready in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
      await lab.open();
      // PHASE_TEST_CONSOLE=1 shows the guest's console as it runs.
      vm = await SystemdVm.boot(
        lab,
        disk,
        Deno.env.get("PHASE_TEST_CONSOLE")
          ? (s) => Deno.stderr.writeSync(new TextEncoder().encode(s))
          : undefined,
      );
      await vm.ready(240_000);
      console.log(`systemd VM shell after ${vm.seconds.toFixed(1)} s`);
      const guest = vm;

      /** curl from the host side of the test network. */
      const curl = async (...args: string[]) => {
        const out = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            lab.ns,
            "curl",
            "-sS",
            "--connect-timeout",
            "2",
            "--max-time",
            "60",
            ...args,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        return {
          code: out.code,
          stdout: text(out.stdout),
          stderr: text(out.stderr),
        };
      };
      const waitHealthy = async () => {
        const deadline = performance.now() + 120_000;
        let last = "";
        while (performance.now() < deadline) {
          const health = await curl("-f", `${BASE}/health`);
          if (health.code === 0) return JSON.parse(health.stdout);
          last = health.stderr;
          await new Promise((r) => setTimeout(r, 1000));
        }
        const state = await guest.run(
          "busybox ip -br addr; systemctl status phase --no-pager -n 0; journalctl -u phase --no-pager -n 30",
        );
        throw new Error(
          `no /health from ${BASE} (${last.trim()}):\n${state.output}`,
        );
      };
      const peerId = async () =>
        JSON.parse((await curl("-f", `${BASE}/`)).stdout).peer_id as string;
      const ok = async (line: string, timeoutMs?: number) => {
        const run = await guest.run(line, timeoutMs);
        assert.equal(run.code, 0, `${line}:\n${run.output}`);
        return run.output;
      };
      const waitActive =
        "for i in $(seq 120); do systemctl is-active --quiet phase && break; sleep 1; done; systemctl is-active phase";

      let servicePeer = "";
      await t.step(
        "apt install: phase.service enabled and active, /health answers the host",
        async () => {
          await ok(
            "cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./phase.deb >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; false; }",
            300_000,
          );
          await ok("systemctl is-enabled phase");
          await ok(waitActive, 180_000);
          const health = await waitHealthy();
          assert.equal(health.status, "ok");
          servicePeer = await peerId();
          assert.match(servicePeer, /^12D3KooW/);
          // The state lives in the StateDirectory, owned by the dynamic user.
          await ok(
            "test -s /var/lib/private/phase/node.key && test -L /var/lib/phase",
          );
          await ok('test "$(stat -c %a /var/lib/private/phase)" = 700');
          console.log(
            `phase.service healthy after ${guest.seconds.toFixed(1)} s`,
          );
        },
      );

      await t.step(
        "POST /jobs from the host: a receipt signed by the service's key",
        async () => {
          const job = await curl(
            "-f",
            "-X",
            "POST",
            "-H",
            "content-type: application/wasm",
            "--data-binary",
            `@${ROOT}/examples/wasm/hello.wasm`,
            `${BASE}/jobs?arg=Hello%20from%20the%20host`,
          );
          assert.equal(job.code, 0, job.stderr);
          const receipt = JSON.parse(job.stdout);
          assert.equal(receipt.stdout, "tsoh eht morf olleH\n");
          assert.equal(receipt.node_peer_id, servicePeer);
          await Deno.writeTextFile(`${dir}/receipt.json`, job.stdout);
          const verify = await new Deno.Command(`${ROOT}/phase`, {
            args: [
              "receipt",
              "verify",
              `${dir}/receipt.json`,
              "--peer",
              servicePeer,
            ],
            env: await freshHomeEnv(dir),
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.equal(verify.code, 0, text(verify.stderr));
          // The service kept its receipt in its state.
          await ok("ls /var/lib/private/phase/receipts | grep -q .");
        },
      );

      await t.step(
        "systemctl restart and an upgrade (reinstall) keep the peer id",
        async () => {
          const keySum = await ok("sha256sum /var/lib/private/phase/node.key");
          await ok("systemctl restart phase");
          await ok(waitActive, 180_000);
          await waitHealthy();
          assert.equal(await peerId(), servicePeer);
          await ok(
            "cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall ./phase.deb >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; false; }",
            300_000,
          );
          await ok(waitActive, 180_000);
          await waitHealthy();
          assert.equal(await peerId(), servicePeer);
          assert.equal(
            await ok("sha256sum /var/lib/private/phase/node.key"),
            keySum,
          );
        },
      );

      await t.step(
        "apt purge: service gone, state and config removed",
        async () => {
          await ok(
            "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q phase >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; false; }",
            300_000,
          );
          const active = await guest.run("systemctl is-active phase");
          assert.notEqual(active.code, 0, active.output);
          await ok(
            "test ! -e /var/lib/phase && test ! -e /var/lib/private/phase && test ! -e /etc/phase && test ! -e /usr/bin/phase",
          );
          const refused = await curl(`${BASE}/health`);
          assert.notEqual(
            refused.code,
            0,
            "the node still answers after purge",
          );
        },
      );
      console.log(
        `systemd VM test done after ${guest.seconds.toFixed(1)} s of VM time`,
      );
    } finally {
      await vm?.stop();
      await lab.close();
      await cleanup();
    }
  },
});
