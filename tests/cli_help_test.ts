/**
 * Help, usage errors and shell completions, all derived from cli/specs.ts:
 * every command answers `--help`, `-h` and `phase help <command>` with no
 * permissions at all; bad command lines are one line and exit 2; the
 * completion scripts parse and complete.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { UsageError } from "../cli/errors.ts";
import { EXIT_STATUS, LARGE_EXIT_STATUS } from "../cli/exit_status.ts";
import { type CommandSpec, parseCommandLine } from "../cli/spec.ts";
import { COMMANDS, TOP_LEVEL } from "../cli/specs.ts";
import {
  aptInstall,
  cli,
  type CliResult,
  examplePath,
  hasCommand,
  ROOT,
  tempDir,
  text,
} from "./helpers.ts";

/** No --allow flag at all: help must need no permission. */
const NO_PERMISSIONS = ["--no-prompt"];

/** Every command and subcommand, parents first. */
function allSpecs(): CommandSpec[] {
  const walk = (spec: CommandSpec): CommandSpec[] => [
    spec,
    ...Object.values(spec.subcommands ?? {}).flatMap(walk),
  ];
  return TOP_LEVEL.flatMap(walk);
}

/**
 * A few flags per command, written out here rather than read from the spec,
 * so that a flag the spec loses fails this test.
 */
const KNOWN_FLAGS: Record<string, string[]> = {
  serve: [
    "-a, --artifacts DIR",
    "-p, --port PORT",
    "--bind ADDRESS",
    "--advertise URL",
    "--pubkey KEY",
    "--no-jobs",
    "--no-dht",
    "--no-mdns",
    "--receipts-max N",
    "--receipts-max-mb MB",
    "--allow-private-module-urls",
  ],
  discover: ["--bootstrap MULTIADDR", "--mode MODE", "--timeout SECONDS"],
  submit: [
    "--peer PEER_ID",
    "--auto",
    "--job-timeout SECONDS",
    "--fuel N",
    "--replicas N",
    "--agree all|majority",
    "--report FILE",
  ],
  run: [
    "--dir HOST:GUEST",
    "--env K=V",
    "--memory MB",
    "--timeout SECONDS",
    "--fuel N",
    "--output-limit BYTES",
    "--scratch GUEST",
    "--manifest FILE",
    "--receipt FILE",
    "--private",
    "--ephemeral",
    "-q, --quiet",
  ],
  "execute-job": ["--wasm FILE", "--args ARG", "--memory MB", "--json"],
  "receipt verify": [
    "--peer PEER_ID",
    "--module-hash",
    "--input-hash",
    "--nonce NONCE",
  ],
  "receipt compare": ["--json"],
  keygen: ["-o, --output FILE", "--data-dir DIR"],
  "manifest generate": [
    "--artifacts DIR",
    "--version VERSION",
    "--manifest-version N",
    "--validity-days DAYS",
  ],
  "manifest sign": ["-k, --key KEYFILE", "-o, --output FILE"],
  "manifest verify": ["--pubkey KEY", "--min-version N"],
  "provider status": ["-a, --url URL", "--json"],
  "provider list": ["--url URL", "--channel CHANNEL", "--arch ARCH"],
  fetch: ["--url URL", "--sha256 HEX", "-o, --output FILE", "-q, --quiet"],
  "boot build": ["--kernel-package DIR", "--busybox FILE", "--sign-key FILE"],
  "boot run": ["--cmdline TEXT"],
  "boot image": ["--pubkey KEY", "--mode MODE", "--provider URL", "--no-qcow2"],
  "release deb": ["-o, --output DIR", "--json", "-q, --quiet"],
  "release build": ["-k, --key KEYFILE", "--mode MODE", "--kernel-package DIR"],
  "release verify": ["--pubkey KEY", "--json"],
  version: ["--json"],
};

/** Defaults the help must state, written out here for the same reason. */
const KNOWN_DEFAULTS: [command: string, flag: string, shown: string][] = [
  ["serve", "--port", "default: 8080"],
  ["serve", "--bind", "default: 0.0.0.0"],
  ["serve", "--mode", "default: internet"],
  ["serve", "--listen", "default: /ip4/0.0.0.0/tcp/4001"],
  ["discover", "--timeout", "default: 5"],
  ["run", "--memory", "default: 128"],
  ["run", "--timeout", "default: 30"],
  ["run", "--output-limit", "default: 1048576"],
  ["manifest generate", "--validity-days", "default: 30"],
  ["boot build", "--output", "default: build/boot"],
  ["boot image", "--output", "default: dist"],
  ["release build", "--output", "default: dist"],
];

/** The help line (with its wrapped continuation) that describes `flag`. */
function flagEntry(help: string, flag: string): string {
  const lines = help.split("\n");
  const start = lines.findIndex((line) =>
    new RegExp(`^ +(-\\w, )?${flag}( |$)`).test(line)
  );
  assert.ok(start >= 0, `no line for ${flag} in:\n${help}`);
  const entry = [lines[start]];
  for (const line of lines.slice(start + 1)) {
    // Continuations are indented deeper than any flag's own line.
    if (!/^ {7,}\S/.test(line)) break;
    entry.push(line.trim());
  }
  return entry.join(" ").replace(/\s+/g, " ");
}

/** Runs `jobs` a few at a time (the machine has two cores). */
async function inTurns<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < jobs.length; i += 4) {
    results.push(...await Promise.all(jobs.slice(i, i + 4).map((j) => j())));
  }
  return results;
}

function assertOneLineUsageError(out: CliResult, label: string): void {
  assert.equal(out.code, 2, `${label}: ${out.stderr}`);
  assert.equal(out.stdout, "", label);
  const line = out.stderr.replace(/\n$/, "");
  assert.ok(!line.includes("\n"), `${label}: more than one line: ${line}`);
  assert.match(line, /^phase: \S/, label);
  for (const quote of [`'`, `"`]) {
    assert.equal(
      line.split(quote).length % 2,
      1,
      `${label}: unbalanced ${quote}: ${line}`,
    );
  }
}

Deno.test("every command and subcommand answers --help, -h and `phase help <command>` with no permissions, listing each flag with its default and the exit statuses", async () => {
  const specs = allSpecs();
  await inTurns(specs.map((spec) => async () => {
    const words = spec.name.split(" ");
    const [long, short, viaHelp] = await Promise.all([
      cli([...words, "--help"], { flags: NO_PERMISSIONS }),
      cli([...words, "-h"], { flags: NO_PERMISSIONS }),
      cli(["help", ...words], { flags: NO_PERMISSIONS }),
    ]);
    for (const out of [long, short, viaHelp]) {
      assert.equal(out.code, 0, `${spec.name}: ${out.stderr}`);
      assert.equal(out.stderr, "", spec.name);
    }
    assert.equal(short.stdout, long.stdout, `${spec.name} -h`);
    assert.equal(viaHelp.stdout, long.stdout, `phase help ${spec.name}`);
    const help = long.stdout;
    assert.match(help, new RegExp(`^phase ${spec.name}: `), spec.name);
    assert.match(help, /^usage: phase /m, spec.name);
    assert.match(help, /^exit status:\n/m, spec.name);
    assert.match(help, /^ +2 +usage error/m, spec.name);
    assert.match(help, /^ +70 +internal error/m, spec.name);
    for (const [name, flag] of Object.entries(spec.flags)) {
      const entry = flagEntry(help, `--${name}`);
      if (flag.short) assert.match(entry, new RegExp(`-${flag.short}, --`));
      if (flag.type === "string") {
        assert.ok(entry.includes(` --${name} ${flag.value}`), entry);
        assert.match(entry, /\((repeatable; )?(default: .+|required)\)$/);
      }
    }
    for (const sub of Object.keys(spec.subcommands ?? {})) {
      assert.match(help, new RegExp(`^  ${sub} `, "m"), spec.name);
    }
    for (const flag of KNOWN_FLAGS[spec.name] ?? []) {
      assert.ok(help.includes(flag), `${spec.name} --help lacks ${flag}`);
    }
    for (const [command, flag, shown] of KNOWN_DEFAULTS) {
      if (command === spec.name) {
        assert.ok(flagEntry(help, flag).includes(shown), `${flag}: ${shown}`);
      }
    }
  }));
  // The hard-coded lists cover every command that takes flags.
  for (const spec of specs) {
    if (!spec.subcommands && Object.keys(spec.flags).length > 0) {
      assert.ok(KNOWN_FLAGS[spec.name], `no known flags for ${spec.name}`);
    }
  }
});

Deno.test("the commands that run jobs document the guest's exit statuses", async () => {
  for (const name of ["run", "execute-job", "submit"]) {
    const out = await cli([name, "--help"], { flags: NO_PERMISSIONS });
    assert.equal(out.code, 0, out.stderr);
    const exits = out.stdout.slice(out.stdout.indexOf("exit status:"));
    for (
      const [status, meaning] of [
        ["0-255", "the guest's exit code"],
        ["255", "above 255"],
        ["124", "wall-clock timeout or fuel spent"],
        ["125", "memory limit"],
        ["134", "trap"],
        ["1", "could not run"],
      ]
    ) {
      assert.match(
        exits,
        new RegExp(`^ +${status} +.*${meaning}`, "m"),
        `${name}: ${status}`,
      );
    }
  }
  // The documented statuses are the ones the commands return.
  assert.deepEqual(
    { ...EXIT_STATUS, large: LARGE_EXIT_STATUS },
    {
      timeout: 124,
      fuel_exhausted: 124,
      memory_limit: 125,
      trap: 134,
      large: 255,
    },
  );
});

Deno.test("phase help, phase --help and phase with no command list every command", async () => {
  const expected = [
    "serve",
    "node",
    "discover",
    "submit",
    "boot build",
    "boot run",
    "run",
    "execute-job",
    "receipt verify",
    "keygen",
    "manifest generate",
    "manifest sign",
    "manifest verify",
    "provider status",
    "provider list",
    "fetch",
    "version",
    "help",
    "completions",
  ];
  const outs = await Promise.all(
    [["help"], ["--help"], ["-h"], []].map((args) =>
      cli(args, { flags: NO_PERMISSIONS })
    ),
  );
  for (const out of outs) {
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, outs[0].stdout);
  }
  const commands = outs[0].stdout.slice(outs[0].stdout.indexOf("commands:"));
  for (const name of expected) {
    assert.match(commands, new RegExp(`^  (\\S+, )?${name}[ ,]`, "m"), name);
  }
  for (const spec of allSpecs().filter((s) => !s.subcommands)) {
    assert.ok(commands.includes(`  ${spec.name}`), spec.name);
  }
  assert.match(outs[0].stdout, /usage: phase <command>/);
});

Deno.test("the README's Commands section points at ./phase help and names every command", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const start = readme.indexOf("\n## Commands\n");
  assert.ok(start >= 0, "README has no Commands section");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  assert.match(section, /`\.\/phase help`/);
  for (const spec of allSpecs().filter((s) => !s.subcommands)) {
    assert.ok(section.includes(`\`${spec.name}\``), spec.name);
  }
});

Deno.test("help and completions load nothing heavy: no npm package and none of the runner's modules", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}/cli/mod.ts`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, text(out.stderr));
  const graph = JSON.parse(text(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: {
        isDynamic?: boolean;
        code?: { specifier: string };
        type?: { specifier: string };
      }[];
    }[];
  };
  const byUrl = new Map(graph.modules.map((m) => [m.specifier, m]));
  const reached = new Set<string>();
  const visit = (url: string) => {
    if (reached.has(url)) return;
    reached.add(url);
    for (const dep of byUrl.get(url)?.dependencies ?? []) {
      if (!dep.isDynamic && dep.code) visit(dep.code.specifier);
    }
  };
  const root = [...byUrl.keys()].find((url) => url.endsWith("/cli/mod.ts"))!;
  visit(root);
  const names = [...reached].map((url) =>
    url.replace(
      /^file:\/\/.*?\/(?=(cli|runner|schemas|node|provider|discovery|boot)\/)/,
      "",
    )
  );
  assert.ok(names.includes("cli/specs.ts"), names.join(" "));
  for (const name of names) {
    assert.ok(!name.startsWith("npm:"), `cli/mod.ts loads ${name}`);
    assert.ok(
      /^(cli\/(mod|errors|exit_status|help|spec|specs)\.ts|runner\/(limits|version|wasm_binary)\.ts|schemas\/types\.ts|node:util)$/
        .test(name),
      `cli/mod.ts loads ${name} before any command runs`,
    );
  }
  // And it runs so: help and completions work with no permission at all.
  for (const args of [["help", "run"], ["completions", "bash"], ["version"]]) {
    const run = await cli(args, { flags: NO_PERMISSIONS });
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
  }
});

Deno.test("usage errors are one line with balanced quotes and exit 2", async () => {
  const hello = examplePath("hello");
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^phase: unknown command frobnicate \(see: phase help\)$/],
    [["run", hello, "--bogus"], /unknown option --bogus/],
    [["run", hello, "--bogus=1"], /unknown option --bogus/],
    [
      ["run", hello, "--timeout", "-1"],
      /^phase: --timeout wants a number above 0 to 86400 seconds, got -1$/,
    ],
    [
      ["run", hello, "--memory", "-5"],
      /^phase: --memory wants a whole number from 1 to 4096 MiB, got -5$/,
    ],
    [["run", hello, "--fuel=-3"], /^phase: --fuel wants a whole number/],
    [["run", hello, "--receipt", "--json"], /--receipt needs a value \(FILE\)/],
    [["run", hello, "--memory"], /--memory needs a value \(MB\)/],
    [["run", hello, "--json=yes"], /--json takes no value/],
    [["run"], /^phase: usage: phase run <module.wasm>/],
    [["execute-job"], /^phase: usage: phase execute-job --wasm FILE/],
    [["submit", hello], /^phase: usage: phase submit/],
    [["serve", "extra"], /unexpected argument extra/],
    [["serve", "--port", "-1"], /^phase: --port wants 0-65535, got -1$/],
    [["keygen", "-x"], /unknown option -x/],
    [["version", "--json=1"], /--json takes no value/],
    [["manifest"], /manifest needs a command: generate, sign, verify/],
    [["manifest", "bogus"], /unknown command manifest bogus/],
    [["manifest", "sign", "m.json"], /^phase: usage: phase manifest sign/],
    [["receipt"], /receipt needs a command: verify/],
    [["receipt", "verify"], /^phase: usage: phase receipt verify FILE/],
    [["provider", "status", "--url"], /--url needs a value \(URL\)/],
    [["fetch", "--url", "http://127.0.0.1:9/x"], /^phase: usage: phase fetch/],
    [["boot", "build", "--bogus"], /unknown option --bogus/],
    [["help", "bogus"], /unknown command bogus/],
    [["help", "manifest", "sign", "x"], /unknown command manifest sign x/],
    [["completions"], /^phase: usage: phase completions bash\|zsh\|fish/],
    [["completions", "tcsh"], /usage: phase completions bash\|zsh\|fish/],
  ];
  const outs = await inTurns(cases.map(([args]) => () => cli(args)));
  cases.forEach(([args, pattern], i) => {
    const label = args.join(" ");
    assertOneLineUsageError(outs[i], label);
    assert.match(outs[i].stderr.trim(), pattern, label);
  });
});

Deno.test("the parser accepts what the spec declares and answers anything else with one line", () => {
  const spec = COMMANDS.run;
  const stringFlags = Object.entries(spec.flags)
    .filter(([, flag]) => flag.type === "string").map(([name]) => name);
  const singleFlags = stringFlags.filter((name) =>
    !("multiple" in spec.flags[name as keyof typeof spec.flags])
  );
  // A reference model: the last value given to a single-valued flag wins,
  // however it is written (`--f v`, `--f=v`), negative numbers included.
  fc.assert(fc.property(
    fc.array(
      fc.record({
        flag: fc.constantFrom(...singleFlags),
        value: fc.oneof(
          fc.stringMatching(/^[A-Za-z0-9_./:=]{1,12}$/),
          fc.integer({ min: -1000, max: -1 }).map(String),
          fc.constant("-0.5"),
        ),
        inline: fc.boolean(),
      }),
      { maxLength: 6 },
    ),
    (given) => {
      const argv = [
        "m.wasm",
        ...given.flatMap(({ flag, value, inline }) =>
          inline ? [`--${flag}=${value}`] : [`--${flag}`, value]
        ),
      ];
      const { values, positionals } = parseCommandLine(spec, argv);
      assert.deepEqual(positionals, ["m.wasm"]);
      const expected = new Map(given.map(({ flag, value }) => [flag, value]));
      for (const name of singleFlags) {
        assert.equal(
          (values as Record<string, unknown>)[name],
          expected.get(name),
          name,
        );
      }
      assert.deepEqual(values.dir, []);
    },
  ));
  // Anything at all: parsed, or one usage error of one line.
  const specs = allSpecs().filter((s) => !s.subcommands);
  fc.assert(fc.property(
    fc.constantFrom(...specs),
    fc.array(
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.constantFrom("--", "-", "--json", "-q", "--memory", "--x=1", "-zq"),
        fc.string({ maxLength: 6 }).map((s) => `--${s}`),
        fc.string({ maxLength: 3 }).map((s) => `-${s}`),
      ),
      { maxLength: 8 },
    ),
    (target, argv) => {
      try {
        parseCommandLine(target, argv);
      } catch (error) {
        assert.ok(error instanceof UsageError, String(error));
        assert.ok(!error.message.includes("\n"), error.message);
        assert.ok(
          error.message.endsWith(`(see: phase ${target.name} --help)`),
          error.message,
        );
      }
    },
  ));
});

Deno.test("no command uses -h for anything but help, and every flag is described", () => {
  for (const spec of allSpecs()) {
    for (const [name, flag] of Object.entries(spec.flags)) {
      assert.notEqual(flag.short, "h", `${spec.name} --${name}`);
      assert.ok(flag.description.length > 0, `${spec.name} --${name}`);
      assert.match(name, /^[a-z0-9][a-z0-9-]*$/);
    }
  }
});

/** Installs a shell with apt-get when it is missing (as root), or fails. */
async function ensureShells(): Promise<void> {
  const missing: string[] = [];
  for (const shell of ["bash", "zsh", "fish"]) {
    if (!await hasCommand(shell)) missing.push(shell);
  }
  await aptInstall(missing, "the completion tests");
}

/** Runs a shell script; stdout, or a failure with what it printed. */
async function shell(
  program: string,
  args: string[],
): Promise<string> {
  const out = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    out.code,
    0,
    `${program} ${args.join(" ")}: ${text(out.stderr)}`,
  );
  return text(out.stdout);
}

Deno.test("phase completions bash|zsh|fish: scripts that parse and complete commands, subcommands and every flag", async () => {
  await ensureShells();
  const [dir, cleanup] = await tempDir();
  try {
    const scripts: Record<string, string> = {};
    for (const name of ["bash", "zsh", "fish"]) {
      const out = await cli(["completions", name], { flags: NO_PERMISSIONS });
      assert.equal(out.code, 0, out.stderr);
      scripts[name] = `${dir}/phase.${name}`;
      await Deno.writeTextFile(scripts[name], out.stdout);
    }
    await shell("bash", ["-n", scripts.bash]);
    await shell("zsh", ["-n", scripts.zsh]);
    await shell("fish", ["-n", scripts.fish]);

    // bash: call the completion function as bash would.
    const leaves = allSpecs().filter((s) => !s.subcommands);
    const complete = (words: string[]) =>
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${
        words.length - 1
      }; _phase; echo "\${COMPREPLY[*]}"`;
    const cases = [
      ["phase", "ma"],
      ["phase", "manifest", "s"],
      ["phase", "no"],
      ["phase", "help", "manifest", ""],
      ["phase", "completions", ""],
      ["phase", "run", "--mem"],
      ...leaves.map((s) => ["phase", ...s.name.split(" "), "-"]),
    ];
    const lines = (await shell("bash", [
      "-c",
      `source ${scripts.bash}\n${cases.map(complete).join("\n")}`,
    ])).split("\n");
    assert.equal(lines[0], "manifest");
    assert.equal(lines[1], "sign");
    assert.equal(lines[2], "node");
    assert.equal(lines[3], "generate sign verify");
    assert.equal(lines[4], "bash zsh fish");
    assert.equal(lines[5], "--memory");
    leaves.forEach((spec, i) => {
      const offered = lines[6 + i].split(" ");
      for (const [name, flag] of Object.entries(spec.flags)) {
        assert.ok(offered.includes(`--${name}`), `${spec.name} --${name}`);
        if (flag.short) assert.ok(offered.includes(`-${flag.short}`));
      }
      assert.ok(offered.includes("--help"), spec.name);
    });
    // A flag's value completes as a file name.
    await Deno.writeTextFile(`${dir}/receipt-here.json`, "{}");
    const value = await shell("bash", [
      "-c",
      `source ${scripts.bash}\n${
        complete(["phase", "run", "--receipt", `${dir}/receipt-h`])
      }`,
    ]);
    assert.equal(value.trim(), `${dir}/receipt-here.json`);

    // fish completes a command line itself.
    const fish = await shell("fish", [
      "-c",
      `source ${scripts.fish}; complete -C 'phase ma'; complete -C 'phase manifest sign --'`,
    ]);
    assert.match(fish, /^manifest\tboot manifests/m);
    assert.match(fish, /^--key\tthe release key/m);
    assert.match(fish, /^--output\t/m);

    // zsh: the function with zsh's completion builtins replaced by ones
    // that print what they were given.
    const zsh = await shell("zsh", [
      "-c",
      `compdef() { :; }
_describe() { print -rl -- "\${(@P)4}"; }
_files() { print FILES; }
source ${scripts.zsh}
words=(phase manifest s); CURRENT=3; _phase
words=(phase run --receipt ''); CURRENT=4; _phase
words=(phase run --m); CURRENT=3; _phase`,
    ]);
    assert.match(zsh, /^sign:sign a boot manifest/m);
    assert.match(zsh, /^FILES$/m);
    assert.match(zsh, /^--memory:memory budget/m);
  } finally {
    await cleanup();
  }
});
