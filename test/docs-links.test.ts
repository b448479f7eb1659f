/**
 * Every relative markdown link of README.md and docs/**\/*.md resolves: the
 * file (or folder) it names exists, and a `#anchor` names a heading of that
 * markdown file (GitHub's slugs: lower case, punctuation dropped, spaces to
 * hyphens, `-1`, `-2` … for repeats). Links inside code blocks and code spans
 * are not links; http(s) and mailto targets are not checked (no network).
 * Written when the long docs were split into parts, so that no link or anchor
 * is left pointing at the part it moved out of.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../build/browser-bundle.js";

/** README.md and every .md under docs/, as paths relative to the repository root. */
function markdownFiles(): string[] {
  const found = ["README.md"];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const path = `${dir}/${name}`;
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (name.endsWith(".md")) found.push(path);
    }
  };
  walk("docs");
  return found;
}

/** The text without fenced code blocks and code spans (their brackets are code, not links). */
const prose = (text: string): string => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, "").replace(/`+[^`\n]*`+/g, "");

/** GitHub's anchor of a heading's text. */
export function slug(heading: string): string {
  return heading
    .replace(/`/g, "")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a markdown text: its headings' slugs (repeats numbered) and explicit `<a id>`/`<a name>`s. */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, "").matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** The relative link targets of a markdown text: inline links and images, and reference definitions. */
export function linksOf(text: string): string[] {
  const body = prose(text);
  const targets = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g), ...body.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** What is wrong with the links of `doc` (a path relative to `root`): one line per broken link. */
export function brokenLinks(root: string, doc: string): string[] {
  const text = readFileSync(join(root, doc), "utf8");
  const wrong: string[] = [];
  for (const target of linksOf(text)) {
    const hash = target.indexOf("#");
    const file = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const path = file === "" ? doc : relative(root, join(root, dirname(doc), file));
    if (path.startsWith("..") || !existsSync(join(root, path))) {
      wrong.push(`${doc}: ${target}: no file ${path}`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!path.endsWith(".md")) {
      wrong.push(`${doc}: ${target}: an anchor into ${path}, which is not markdown`);
      continue;
    }
    if (!anchorsOf(readFileSync(join(root, path), "utf8")).has(anchor)) wrong.push(`${doc}: ${target}: no heading #${anchor} in ${path}`);
  }
  return wrong;
}

describe("relative links of README.md and docs/**/*.md", { timeout: 30_000 }, () => {
  it("slugs headings as GitHub does", () => {
    assert.equal(slug("Acknowledged puts and the outbox (tooldb-dht extension)"), "acknowledged-puts-and-the-outbox-tooldb-dht-extension");
    assert.equal(slug("Broadcast tree between servers (tooldb-dht extension, capability `pt1`)"), "broadcast-tree-between-servers-tooldb-dht-extension-capability-pt1");
    assert.equal(slug("Capacity: idle clients"), "capacity-idle-clients");
    assert.deepEqual([...anchorsOf("# A\n## Limits\n```\n## not a heading\n```\n### Limits\n")], ["a", "limits", "limits-1"]);
  });

  it("finds links, and not those in code", () => {
    assert.deepEqual(linksOf("see [a](a.md#x), ![b](b.svg), `[c](c.md)`, [d](https://e.org)\n```\n[f](f.md)\n```\n[g]: g.md\n"), ["a.md#x", "b.svg", "g.md"]);
  });

  it("reports a missing file and a missing anchor (so the check below can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tooldb-links-"));
    try {
      mkdirSync(join(dir, "docs"));
      writeFileSync(join(dir, "docs", "part.md"), "# Part\n\n## Server catch-up\n");
      writeFileSync(join(dir, "README.md"), "[a](docs/part.md#server-catch-up) [b](docs/gone.md) [c](docs/part.md#limits) [d](#top) [e](../out.md)\n# Top\n");
      assert.deepEqual(brokenLinks(dir, "README.md"), [
        "README.md: docs/gone.md: no file docs/gone.md",
        "README.md: docs/part.md#limits: no heading #limits in docs/part.md",
        "README.md: ../out.md: no file ../out.md",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every relative link names a file that exists and, with #anchor, a heading of it", () => {
    const docs = markdownFiles();
    assert.ok(docs.length >= 10, `only ${docs.length} markdown files found`);
    const links = docs.reduce((n, doc) => n + linksOf(readFileSync(join(ROOT, doc), "utf8")).length, 0);
    assert.ok(links >= 30, `only ${links} relative links found`);
    assert.deepEqual(docs.flatMap((doc) => brokenLinks(ROOT, doc)), []);
  });
});
