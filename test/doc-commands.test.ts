/**
 * The command lines of the docs against the CLI (found by a docs audit: the
 * README's synopsis lacked `--web-dir` and `--metrics-host`, and `serve`
 * read PUBLIC_HOST, PUBLIC_URL, TLS_CERT and TLS_KEY that no help named):
 * - every `tooldb-dht <command> ... --flag` written in README.md, docs/*.md
 *   and examples/README.md (code blocks and `code spans`) names a flag that
 *   command has;
 * - every flag of every command is in its own --help and in README.md's
 *   synopsis or docs/cli.md (the CLI reference, moved out of README.md);
 * - the concrete command lines of the `sh` blocks are ones the CLI accepts;
 * - the quick start is the two command lines the README promises.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../build/browser-bundle.js";
import { COMMANDS } from "../src/cli/commands.js";
import { LIMIT_FLAG_NAMES } from "../src/cli/defaults.js";
import { run } from "./helpers/cli.js";

const DOCS = ["README.md", "examples/README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const read = (doc: string) => readFileSync(join(ROOT, doc), "utf8");
const flagsOf = (command: string): ReadonlySet<string> => {
  const spec = COMMANDS.find((c) => c.name === command);
  return new Set([...(spec ? Object.keys(spec.flags) : []), "help"]);
};
const NAMES = [...COMMANDS.map((c) => c.name), "version"];

interface Mention {
  doc: string;
  command: string;
  /** What follows the command name, up to the end of its line (a block's lines joined at `\` and at synopsis lines that go on with `[`). */
  rest: string;
}

/** Every `tooldb-dht <command> …` of a document, and the spans `serve --…` that name a command's flags without the program name. */
function mentions(doc: string): Mention[] {
  const text = read(doc);
  const found: Mention[] = [];
  const command = new RegExp(`(?:^|[\\s\`"'(])tooldb-dht (${NAMES.join("|")})\\b(.*)$`);
  for (const block of text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    const lines = block[1]!.replace(/\\\n/g, " ").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = command.exec(lines[i]!);
      if (!m) continue;
      let rest = m[2]!;
      while (i + 1 < lines.length && /^\s+\[/.test(lines[i + 1]!)) rest += ` ${lines[++i]!}`;
      found.push({ doc, command: m[1]!, rest });
    }
  }
  const prose = text.replace(/```[a-z]*\n[\s\S]*?```/g, "");
  for (const span of prose.matchAll(/`([^`\n]+)`/g)) {
    const m = new RegExp(`^(?:npx )?(?:tooldb-dht )?(${NAMES.join("|")}) (--.*)$`).exec(span[1]!) ?? command.exec(span[1]!);
    if (m) found.push({ doc, command: m[1]!, rest: m[2]! });
  }
  return found;
}

const flagNames = (text: string) => [...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!);

describe("the docs' command lines against the CLI", { timeout: 60_000 }, () => {
  const all = DOCS.flatMap(mentions);

  it("finds the docs' command lines (the synopsis of README.md among them)", () => {
    assert.ok(all.length >= 30, `only ${all.length} command lines found`);
    for (const name of NAMES) assert.ok(all.some((m) => m.doc === "README.md" && m.command === name), `README.md shows tooldb-dht ${name}`);
  });

  it("every flag the docs give a command is one that command has", () => {
    const wrong = all.flatMap((m) => flagNames(m.rest).filter((f) => !flagsOf(m.command).has(f)).map((f) => `${m.doc}: tooldb-dht ${m.command} --${f}`));
    assert.deepEqual(wrong, []);
  });

  it("every flag of every command is in its --help and in README.md or docs/cli.md", () => {
    const reference = new Set(flagNames(read("README.md") + read("docs/cli.md")));
    for (const command of COMMANDS) {
      const help = new Set(flagNames(command.usage));
      for (const flag of Object.keys(command.flags)) {
        assert.ok(help.has(flag), `tooldb-dht ${command.name} --help names --${flag}`);
        assert.ok(reference.has(flag), `README.md or docs/cli.md names ${command.name}'s --${flag}`);
      }
    }
  });

  it("README.md's synopsis gives every command with each flag but the limit flags (it lacked serve's --web-dir and --metrics-host, status's --metrics-host)", () => {
    const block = /```\n(tooldb-dht serve [\s\S]*?)```/.exec(read("README.md"));
    assert.ok(block, "README.md has the synopsis block");
    // Each command's lines: from its `tooldb-dht <command>` to the next one.
    const synopsis = block[1]!.split(/^(?=tooldb-dht )/m).map((part) => ({ command: part.trim().split(" ")[1]!, rest: part }));
    assert.deepEqual(synopsis.map((m) => m.command), NAMES);
    const limits = new Set<string>([...LIMIT_FLAG_NAMES, "exempt-ips", "http-headers-timeout", "http-idle-timeout"]);
    for (const command of COMMANDS) {
      const given = new Set(synopsis.filter((m) => m.command === command.name).flatMap((m) => flagNames(m.rest)));
      const missing = Object.keys(command.flags).filter((f) => !limits.has(f) && !given.has(f));
      assert.deepEqual(missing, [], `README.md's synopsis of tooldb-dht ${command.name}`);
    }
  });

  it("the environment variables serve reads are named in its --help and in docs/cli.md", () => {
    const serve = COMMANDS.find((c) => c.name === "serve")!;
    for (const name of ["HOST", "PORT", "TOPIC", "DATA_DIR", "PUBLIC_HOST", "PUBLIC_URL", "TLS_CERT", "TLS_KEY"]) {
      assert.match(serve.usage, new RegExp(`\\b${name}\\b`), `serve --help names ${name}`);
      assert.match(read("docs/cli.md"), new RegExp(`\`${name}\``), `docs/cli.md names ${name}`);
    }
  });

  it("the concrete command lines of the sh blocks are accepted by the CLI (flags known, values well formed)", async () => {
    const lines = DOCS.flatMap((doc) =>
      [...read(doc).matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((b) => b[1]!.replace(/\\\n/g, " ").split("\n")).filter((l) => /^\s*tooldb-dht /.test(l)).map((l) => ({ doc, line: l.replace(/#.*$/, "").trim() })),
    );
    assert.ok(lines.length >= 1, "docs/browsers.md's serve line");
    for (const { doc, line } of lines) {
      const { code, err } = await run([...line.split(/\s+/).slice(1), "--help"]).exited;
      assert.equal(code, 0, `${doc}: ${line}: ${err}`);
    }
  });

  it("the quick start is two command lines: the demo, then the tests, and package.json runs them", () => {
    const quick = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(read("README.md"));
    assert.ok(quick, "README.md has a quick start block");
    const lines = quick[1]!.trim().split("\n").map((l) => l.replace(/#.*$/, "").trim());
    assert.deepEqual(lines, ["npm ci && npm run demo", "npm test"]);
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.demo!, /node dist\/src\/cli\/main\.js demo$/); // what test/cli.test.ts runs, on loopback
    assert.ok(scripts.test, "npm test");
  });
});
