/**
 * The status page for people, in a real browser: a node started like
 * `phase serve`, a job and a download to count, then headless Chromium loads
 * `GET /` and the figures it shows must be those of `/status`. The node and
 * the browser run in a network namespace that has only loopback, so the
 * browser cannot reach anything else. Also: the page's escaping, in process.
 */
import assert from "node:assert/strict";
import { escapeHtml, renderStatusPage } from "../provider/status_page.ts";
import {
  aptInstall,
  denoDir,
  hasCommand,
  headlessChromiumArgs,
  loopbackServeArgs,
  netns,
  ROOT,
  runOk,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

Deno.test({
  name:
    "status page: headless Chromium shows the same figures as /status, and a screenshot",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!await hasCommand("chromium")) {
      await aptInstall(["chromium"], "the status page test");
    }
    const [dir, cleanup] = await tempDir();
    const [ns, removeNs] = await netns();
    const inNs = (program: string, args: string[]) =>
      runOk("ip", ["netns", "exec", ns, program, ...args]);
    let node:
      | Awaited<ReturnType<typeof spawnAnnounced<{ url: string }>>>
      | undefined;
    try {
      node = await spawnAnnounced<{ url: string }>("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT}/main.ts`,
          ...loopbackServeArgs(`${dir}/node`),
        ],
        env: { DENO_DIR: await denoDir() },
      });
      const url = node.info.url;
      // Something to count: a job, and a download of the hello module.
      await inNs("curl", [
        "-sf",
        "-X",
        "POST",
        "-H",
        "content-type: application/wasm",
        "--data-binary",
        `@${ROOT}/examples/wasm/hello.wasm`,
        `${url}/jobs?arg=page`,
      ]);
      await inNs("curl", [
        "-sf",
        "-o",
        "/dev/null",
        `${url}/stable/x86_64/hello.wasm`,
      ]);
      const chromium = (extra: string[]) =>
        inNs("chromium", [
          ...headlessChromiumArgs(`${dir}/chromium`),
          ...extra,
          `${url}/`,
        ]);
      const dom = await chromium(["--dump-dom"]);
      const status = JSON.parse(await inNs("curl", ["-sf", `${url}/status`]));
      const field = (id: string) =>
        new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom)?.[1];
      assert.equal(field("peer-id"), status.peer_id);
      assert.equal(field("version"), status.version);
      assert.equal(field("health"), status.health.status);
      assert.equal(field("jobs-run"), String(status.metrics.jobs_run_total));
      assert.equal(status.metrics.jobs_run_total, 1);
      assert.match(
        dom,
        new RegExp(
          `data-field="manifest_version">${status.manifest.manifest_version}<`,
        ),
      );
      for (const artifact of status.artifacts) {
        assert.ok(dom.includes(artifact.sha256), artifact.name);
      }
      const hello = status.artifacts.find((a: { name: string }) =>
        a.name === "hello.wasm"
      );
      assert.equal(hello.downloads, 1);
      assert.equal(status.recent_receipts.length, 1);
      assert.ok(dom.includes(status.recent_receipts[0].job_id));
      // The page loads nothing from anywhere: no src, no external href.
      assert.doesNotMatch(dom, /\ssrc=|href="(?!\/status|\/metrics)/);
      await chromium([
        `--screenshot=${dir}/status.png`,
        "--window-size=1100,1400",
      ]);
      const png = await Deno.readFile(`${dir}/status.png`);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
      assert.ok(png.length > 10_000, `screenshot is ${png.length} bytes`);
    } finally {
      if (node) await stopAnnounced(node);
      await removeNs();
      await cleanup();
    }
  },
});

Deno.test("status page: everything shown is escaped", () => {
  const hostile = `<script>alert(1)</script>"'&`;
  const page = renderStatusPage({
    version: hostile,
    peer_id: hostile,
    channel: "stable",
    arch: "x86_64",
    uptime_seconds: 3661,
    health: { status: "unhealthy", reason: hostile },
    artifacts: [{ name: hostile, size: 2048, sha256: hostile, downloads: 3 }],
    manifest: {
      manifest_version: 7,
      expires_at: hostile,
      valid: false,
      signers: [hostile],
    },
    peers: 2,
    metrics: {
      jobs_run_total: 1,
      jobs_by_status: { [hostile]: 1 },
      jobs_refused_by_reason: {},
      jobs_cancelled_total: 0,
      requests_total: 9,
      bytes_served_total: 4096,
      errors_total: 0,
    },
    recent_receipts: [{
      job_id: hostile,
      timestamp: hostile,
      status: hostile,
      exit_code: null,
      module_hash: hostile,
    }],
  });
  assert.doesNotMatch(page, /<script/);
  assert.ok(page.includes(escapeHtml(hostile)));
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});
