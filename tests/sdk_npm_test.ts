/**
 * The SDK as Node users get it: `deno task build:sdk`'s packed tarball,
 * installed with npm into an empty folder, then `node --test` there
 * (tests/node/sdk_suite.mjs and examples/sdk/node_submit.mjs, copied beside
 * node_modules) against two real nodes started like `phase serve`.
 */
import assert from "node:assert/strict";
import { buildSdk, packSdk } from "../sdk/build_npm.ts";
import {
  example,
  examplePath,
  hasCommand,
  loopbackServeArgs,
  ROOT,
  runOk,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

interface ServeInfo {
  url: string;
  peer_id: string;
  multiaddrs: string[];
}

Deno.test({
  name: "sdk npm package: node --test against real nodes, from the tarball",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.ok(await hasCommand("node"), "node (20 or later) is needed");
    assert.ok(await hasCommand("npm"), "npm is needed");
    const major = Number(
      (await runOk("node", ["--version"])).replace(/^v/, "").split(".")[0],
    );
    assert.ok(major >= 20, `node ${major} is older than 20`);
    const [dir, cleanup] = await tempDir();
    const serve = (name: string, bootstrap: string[] = []) =>
      spawnAnnounced<ServeInfo>(`${ROOT}/phase`, {
        args: [
          ...loopbackServeArgs(`${dir}/${name}`),
          ...bootstrap.flatMap((b) => ["--bootstrap", b]),
        ],
      });
    const a = await serve("a");
    const b = await serve("b", [a.info.multiaddrs[0]]);
    try {
      const tarball = await packSdk(await buildSdk());
      const app = `${dir}/app`;
      await Deno.mkdir(app);
      await Deno.writeTextFile(
        `${app}/package.json`,
        JSON.stringify({ name: "app", private: true, type: "module" }),
      );
      // The package has no dependencies: nothing is downloaded.
      await runOk("npm", [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        tarball,
      ], app);
      const installed = JSON.parse(
        await Deno.readTextFile(`${app}/node_modules/@phase/sdk/package.json`),
      );
      assert.deepEqual(installed.dependencies ?? {}, {});
      // Types ship with each entry point.
      const types = (name: string) =>
        Deno.readTextFile(`${app}/node_modules/@phase/sdk/dist/${name}.d.ts`);
      assert.match(await types("mod"), /export declare class PhaseClient\b/);
      assert.match(
        await types("p2p"),
        /export declare function p2pTransport\(/,
      );
      assert.match(await types("local"), /localTransport/);
      await Deno.copyFile(
        `${ROOT}/tests/node/sdk_suite.mjs`,
        `${app}/sdk_suite.mjs`,
      );
      await Deno.copyFile(
        `${ROOT}/examples/sdk/node_submit.mjs`,
        `${app}/node_submit.mjs`,
      );
      await Deno.writeFile(`${app}/hello.wasm`, example("hello"));
      const out = await new Deno.Command("node", {
        args: ["--test", "--test-reporter=tap", "sdk_suite.mjs"],
        cwd: app,
        env: {
          PHASE_URL: a.info.url,
          PHASE_PEER: a.info.peer_id,
          PHASE_OTHER_PEER: b.info.peer_id,
          PHASE_BOOTSTRAP: a.info.multiaddrs[0],
          PHASE_HELLO: examplePath("hello"),
          PHASE_EXAMPLE: `${app}/node_submit.mjs`,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const tap = new TextDecoder().decode(out.stdout);
      assert.equal(
        out.code,
        0,
        `${tap}\n${new TextDecoder().decode(out.stderr)}`,
      );
      assert.match(tap, /^# pass 7$/m, tap);
      assert.match(tap, /^# fail 0$/m, tap);
      // The README's SDK examples, as written but for the node's address.
      const readme = await Deno.readTextFile(`${ROOT}/README.md`);
      const sdkSection = readme.slice(readme.indexOf("## The SDK"));
      const block = (lang: string) =>
        new RegExp("```" + lang + "\n([\\s\\S]*?)```").exec(sdkSection)![1];
      await Deno.writeTextFile(
        `${app}/readme.mjs`,
        block("js").replace("http://127.0.0.1:8080", a.info.url),
      );
      const nodeExample = await runOk("node", ["readme.mjs"], app);
      assert.match(
        nodeExample,
        /^!dlroW ,olleH 0\nreceipt verified, signed by 12D3KooW\w+\n$/,
      );
      const denoExample = await runOk(Deno.execPath(), [
        "eval",
        "--ext=ts",
        block("ts").replace(
          "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…",
          a.info.multiaddrs[0],
        ),
      ], ROOT);
      assert.match(denoExample, /^olleH \[/);
      assert.ok(denoExample.includes(a.info.peer_id), denoExample);
      assert.ok(denoExample.includes(b.info.peer_id), denoExample);
    } finally {
      await stopAnnounced(b);
      await stopAnnounced(a);
      await cleanup();
    }
  },
});
