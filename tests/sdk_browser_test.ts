/**
 * examples/sdk/verify.html in headless Chromium: the page, loaded with the
 * SDK's browser bundle (`deno task build:sdk`), verifies a real receipt
 * (signed by `phase run`) it fetches, and refuses the same receipt with one
 * signed byte changed and a receipt checked against another signer. The
 * page, its server and the browser run in a network namespace that has only
 * loopback, so nothing outside can be reached.
 */
import assert from "node:assert/strict";
import { buildSdk } from "../sdk/build_npm.ts";
import {
  aptInstall,
  cli,
  examplePath,
  hasCommand,
  headlessChromiumArgs,
  netns,
  ROOT,
  runOk,
  tempDir,
} from "./helpers.ts";

Deno.test({
  name:
    "sdk verify.html: Chromium verifies a real receipt, refuses a tampered one",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!await hasCommand("chromium")) {
      await aptInstall(["chromium"], "the SDK browser test");
    }
    if (!await hasCommand("python3")) {
      await aptInstall(["python3"], "the SDK browser test (serves the page)");
    }
    const [dir, cleanup] = await tempDir();
    const [ns, removeNs] = await netns();
    const inNs = (program: string, args: string[]) =>
      runOk("ip", ["netns", "exec", ns, program, ...args]);
    let server: Deno.ChildProcess | undefined;
    try {
      // The site: the page and the bundle where the page expects them.
      const site = `${dir}/site`;
      await Deno.mkdir(`${site}/examples/sdk`, { recursive: true });
      await Deno.mkdir(`${site}/build/sdk/dist`, { recursive: true });
      const built = await buildSdk();
      await Deno.copyFile(
        `${built}/dist/mod.js`,
        `${site}/build/sdk/dist/mod.js`,
      );
      await Deno.copyFile(
        `${ROOT}/examples/sdk/verify.html`,
        `${site}/examples/sdk/verify.html`,
      );
      const ran = await cli([
        "run",
        examplePath("hello"),
        "--ephemeral",
        "--receipt",
        `${site}/real.json`,
        "--",
        "browser",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      const receipt = JSON.parse(await Deno.readTextFile(`${site}/real.json`));
      await Deno.writeTextFile(
        `${site}/tampered.json`,
        JSON.stringify({ ...receipt, stdout: "resworb\n!" }),
      );
      server = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          "python3",
          "-m",
          "http.server",
          "8000",
          "--bind",
          "127.0.0.1",
          "--directory",
          site,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const base = "http://127.0.0.1:8000";
      for (let i = 0; i < 100; i++) {
        const ok = await inNs("curl", ["-sf", "-o", "/dev/null", `${base}/`])
          .then(() => true, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const page = async (query: string) => {
        const dom = await inNs("chromium", [
          ...headlessChromiumArgs(`${dir}/chromium`),
          "--virtual-time-budget=10000",
          "--dump-dom",
          `${base}/examples/sdk/verify.html?${query}`,
        ]);
        const match = /<output id="verdict" data-valid="(\w*)">([^<]*)</
          .exec(dom);
        assert.ok(match, dom);
        return { valid: match[1], text: match[2] };
      };
      const real = await page("receipt=/real.json");
      assert.equal(real.valid, "true", real.text);
      assert.ok(real.text.includes(receipt.node_peer_id), real.text);
      const signer = await page(
        `receipt=/real.json&peer=${receipt.node_peer_id}`,
      );
      assert.equal(signer.valid, "true", signer.text);
      const tampered = await page("receipt=/tampered.json");
      assert.equal(tampered.valid, "false");
      assert.match(tampered.text, /invalid signature/);
      const other = await cli([
        "keygen",
        "--output",
        `${dir}/other.key`,
        "--json",
      ]);
      assert.equal(other.code, 0, other.stderr);
      const stranger = JSON.parse(other.stdout).peer_id as string;
      const wrongSigner = await page(`receipt=/real.json&peer=${stranger}`);
      assert.equal(wrongSigner.valid, "false");
      assert.match(wrongSigner.text, /peerId/);
      // The page loads nothing from anywhere else.
      const html = await Deno.readTextFile(`${ROOT}/examples/sdk/verify.html`);
      assert.doesNotMatch(html, /(src|href)="https?:|import .* from "https?:/);
    } finally {
      try {
        server?.kill("SIGTERM");
        await server?.status;
      } catch {
        // already gone
      }
      await removeNs();
      await cleanup();
    }
  },
});
