/**
 * A real Debian with systemd in QEMU, for package tests: the cached
 * debootstrap root (tests/debian_root.ts) copied, given a static address,
 * a root shell on the serial console and the files to
 * test, made into an ext4 disk image with `mkfs.ext4 -d` (no mounts), and
 * booted with the Debian kernel and a tiny busybox initramfs that loads the
 * virtio and ext4 modules and switches to the disk. The test drives the
 * shell line by line and reads each command's exit status.
 */
import { extractVmlinux } from "../boot/mod.ts";
import type { Lab } from "./boot_harness.ts";
import { runOk } from "./helpers.ts";

/** Modules the initramfs loads (with their dependencies) before switching root. */
const MODULES = [
  "virtio_pci",
  "virtio_blk",
  "virtio_net",
  "ext4",
  "crc32c_generic",
];

/** Where the guest is on the lab's bridge (10.77.0.1 is the host side). */
export const GUEST_ADDRESS = "10.77.0.20";

/** The modules `names` need, dependencies first, from a kernel module tree. */
async function moduleClosure(
  modulesDir: string,
  names: string[],
): Promise<string[]> {
  const paths = new Map<string, string>();
  const list = await runOk("find", [modulesDir, "-name", "*.ko*"]);
  for (const path of list.split("\n").filter(Boolean)) {
    const name = path.split("/").pop()!.replace(/\.ko(\.xz)?$/, "")
      .replaceAll("-", "_");
    paths.set(name, path);
  }
  const ordered: string[] = [];
  const visit = async (name: string) => {
    const path = paths.get(name.replaceAll("-", "_"));
    if (!path || ordered.includes(path)) return; // built in, or done
    const depends = (await runOk("modinfo", ["-F", "depends", path])).trim();
    for (const dep of depends.split(",").filter(Boolean)) await visit(dep);
    if (!ordered.includes(path)) ordered.push(path);
  };
  for (const name of names) await visit(name);
  return ordered;
}

/** The initramfs that mounts /dev/vda and starts systemd from it. */
async function switchRootInitramfs(
  modulesDir: string,
  output: string,
): Promise<void> {
  const stage = await Deno.makeTempDir({ prefix: "phase-vm-initrd-" });
  try {
    for (const dir of ["bin", "proc", "sys", "dev", "newroot", "modules"]) {
      await Deno.mkdir(`${stage}/${dir}`);
    }
    await Deno.copyFile("/bin/busybox", `${stage}/bin/busybox`);
    await Deno.chmod(`${stage}/bin/busybox`, 0o755);
    for (const applet of ["sh", "mount", "insmod", "switch_root", "sleep"]) {
      await Deno.symlink("busybox", `${stage}/bin/${applet}`);
    }
    const order: string[] = [];
    for (
      const [i, path] of (await moduleClosure(modulesDir, MODULES)).entries()
    ) {
      const name = `${String(i).padStart(2, "0")}.ko`;
      if (path.endsWith(".xz")) {
        await runOk("sh", [
          "-c",
          `xz -dc '${path}' > '${stage}/modules/${name}'`,
        ]);
      } else await Deno.copyFile(path, `${stage}/modules/${name}`);
      order.push(name);
    }
    await Deno.writeTextFile(
      `${stage}/init`,
      `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${order.join(" ")}; do insmod /modules/$m; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.5; done
mount -t ext4 -o rw /dev/vda /newroot || { echo "vm-initrd: cannot mount /dev/vda"; exec sh; }
exec switch_root /newroot /sbin/init
`,
    );
    await Deno.chmod(`${stage}/init`, 0o755);
    await runOk("sh", [
      "-c",
      `cd '${stage}' && find . | sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > '${output}'`,
    ]);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** Makes the copied root a test machine: address, console shell, hostname. */
async function configureRoot(root: string): Promise<void> {
  const write = async (path: string, content: string) => {
    await Deno.mkdir(`${root}${path.slice(0, path.lastIndexOf("/"))}`, {
      recursive: true,
    });
    await Deno.writeTextFile(`${root}${path}`, content);
  };
  await write("/etc/hostname", "phase-vm\n");
  await write("/etc/fstab", "/dev/vda / ext4 rw,relatime 0 1\n");
  // A static address. The minbase root has no udev, and systemd-networkd
  // leaves alone links udev has not seen, so busybox sets it.
  await Deno.copyFile("/bin/busybox", `${root}/usr/local/bin/busybox`);
  await write(
    "/etc/systemd/system/test-network.service",
    `[Unit]
Description=Static address for the test
Before=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/bin/busybox ip link set eth0 up
ExecStart=/usr/local/bin/busybox ip addr add ${GUEST_ADDRESS}/24 dev eth0

[Install]
WantedBy=multi-user.target
`,
  );
  // A root shell on the serial console instead of a login prompt.
  await write(
    "/etc/systemd/system/test-console.service",
    `[Unit]
Description=Root shell on ttyS0 for the test
After=systemd-user-sessions.service

[Service]
Environment=PS1= TERM=dumb
ExecStart=/bin/sh
StandardInput=tty
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=yes
TTYVHangup=yes
Restart=always

[Install]
WantedBy=multi-user.target
`,
  );
  await runOk("ln", [
    "-sf",
    "/dev/null",
    `${root}/etc/systemd/system/serial-getty@ttyS0.service`,
  ]);
  await runOk("systemctl", [
    `--root=${root}`,
    "enable",
    "test-network.service",
    "test-console.service",
  ]);
}

/** The pieces a systemd VM boots from. */
export interface SystemdDisk {
  /** The ext4 image of the root. */
  disk: string;
  /** The kernel (uncompressed, booted directly). */
  vmlinux: string;
  /** The switch-root initramfs. */
  initrd: string;
}

/**
 * Builds the VM's disk from `root` (a copy of the Debian root, changed in
 * place) with `files` copied into it, plus the kernel and initramfs.
 */
export async function buildSystemdDisk(options: {
  root: string;
  files: Record<string, string>;
  kernel: string;
  modules: string;
  dir: string;
}): Promise<SystemdDisk> {
  await configureRoot(options.root);
  for (const [target, source] of Object.entries(options.files)) {
    await Deno.copyFile(source, `${options.root}${target}`);
  }
  const disk = `${options.dir}/root.ext4`;
  await runOk("mkfs.ext4", [
    "-q",
    "-F",
    "-L",
    "phase-root",
    "-d",
    options.root,
    disk,
    "2G",
  ]);
  const initrd = `${options.dir}/initrd.gz`;
  await switchRootInitramfs(options.modules, initrd);
  const vmlinux = await extractVmlinux(
    options.kernel,
    `${options.dir}/vmlinux`,
  );
  return { disk, vmlinux, initrd };
}

/** A booted systemd VM whose serial console is a root shell. */
export class SystemdVm {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #output = "";
  #waiters: (() => void)[] = [];
  #count = 0;
  #started = performance.now();

  #exited: Promise<string>;

  private constructor(
    child: Deno.ChildProcess,
    onOutput?: (s: string) => void,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#exited = new Response(child.stderr).text();
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        const piece = decoder.decode(chunk, { stream: true });
        this.#output += piece;
        onOutput?.(piece);
        for (const wake of this.#waiters.splice(0)) wake();
      }
      for (const wake of this.#waiters.splice(0)) wake();
    })();
  }

  /** Boots the disk on a tap device of `lab`. */
  static async boot(
    lab: Lab,
    disk: SystemdDisk,
    onOutput?: (s: string) => void,
  ): Promise<SystemdVm> {
    const tap = await lab.tap();
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        lab.ns,
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "1024",
        "-smp",
        "1",
        "-nodefaults",
        "-nographic",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        disk.vmlinux,
        "-initrd",
        disk.initrd,
        "-append",
        "console=ttyS0 panic=-1 quiet systemd.show_status=0",
        "-drive",
        `file=${disk.disk},format=raw,if=virtio`,
        "-netdev",
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        "-device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:20",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new SystemdVm(child, onOutput);
  }

  /** Seconds since QEMU started. */
  get seconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  /** Everything the console printed. */
  get output(): string {
    return this.#output;
  }

  async #waitFor(pattern: RegExp, from: number, timeoutMs: number) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const match = this.#output.slice(from).match(pattern);
      if (match) return match;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${pattern}; console ends with:\n${
            this.#output.slice(-3000)
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async #send(line: string) {
    try {
      await this.#writer.write(new TextEncoder().encode(`${line}\n`));
    } catch {
      const status = await this.#child.status;
      throw new Error(
        `QEMU exited (${status.code}): ${
          (await this.#exited).trim()
        }; console ends with:\n${this.#output.slice(-3000)}`,
      );
    }
  }

  /** Waits until the console shell answers (systemd has started it). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const from = this.#output.length;
      await this.#send("echo ready-$((6*7))");
      try {
        await this.#waitFor(/ready-42/, from, 3000);
        return;
      } catch (error) {
        if (performance.now() > deadline) throw error;
      }
    }
  }

  /**
   * Runs a shell line in the guest; its output and exit status. The marker
   * holds arithmetic, so the echo of the typed line never matches it.
   */
  async run(
    line: string,
    timeoutMs = 120_000,
  ): Promise<{ code: number; output: string }> {
    const n = 1000 + this.#count++;
    const from = this.#output.length;
    await this.#send(`${line}; echo "@@rc=$?@@$((${n}+0))@@"`);
    const match = await this.#waitFor(
      new RegExp(`@@rc=(\\d+)@@${n}@@`),
      from,
      timeoutMs,
    );
    const text = this.#output.slice(from);
    // The terminal echoes the typed line first; the output follows it.
    const typed = `$((${n}+0))@@"`;
    const echoed = text.indexOf(typed);
    const start = echoed < 0 ? 0 : text.indexOf("\n", echoed) + 1;
    return {
      code: Number(match[1]),
      output: text.slice(start, text.indexOf(match[0])),
    };
  }

  /** Ends QEMU. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}
