/**
 * The README is the product page: it must name what the product has (every CLI command and its
 * options, every setting, every preset, every editor command) and stay a page for users (no issue
 * numbers, no links out of the repository, no link or image that is not there). The tables it is
 * checked against are the real ones, so a command, setting or preset added without its line fails.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { COMMANDS } from '../../src/cli/commands';
import { PRESETS } from '../../src/core/index';

const root = resolve(__dirname, '../../..');
const read = (name: string): string => readFileSync(resolve(root, name), 'utf8');
const readme = read('README.md');

interface PackageJson {
  contributes: {
    configuration: { properties: Record<string, unknown> } | { properties: Record<string, unknown> }[];
    commands: { command: string; title: string }[];
  };
}
const pkg = JSON.parse(read('package.json')) as PackageJson;

/** A package.json title, with a `%key%` looked up in package.nls.json (the English strings). */
function title(t: string): string {
  const key = /^%(.+)%$/.exec(t)?.[1];
  if (key === undefined) return t;
  const nls = JSON.parse(read('package.nls.json')) as Record<string, string | { message: string }>;
  const v = nls[key];
  assert.ok(v !== undefined, `package.nls.json has no ${key}`);
  return typeof v === 'string' ? v : v.message;
}

/** The text of the README section under a heading, up to the next heading of the same or a higher level. */
function section(md: string, heading: string): string {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  assert.ok(start >= 0, `no heading ${JSON.stringify(heading)} in the README`);
  const level = /^#+/.exec(heading)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading.toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');

/** Every link and image target in a Markdown text: `[..](t)`, `![..](t)` and `<img src="t">`, outside code. */
function links(md: string): string[] {
  const prose = md.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  const md1 = [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
  const html = [...prose.matchAll(/<(?:img|a)\b[^>]*\b(?:src|href)=["']([^"']+)["']/g)].map((m) => m[1]!);
  return [...md1, ...html];
}

/**
 * What is wrong with a document's links: one that leaves the repository (a `../` path, an absolute
 * path, a URL outside `allowedHosts`), points at nothing, or names an anchor no heading makes.
 */
function linkProblems(file: string, md: string, allowedHosts: readonly string[] = []): string[] {
  const problems: string[] = [];
  const anchors = new Set(md.split('\n').filter((l) => /^#+ /.test(l)).map((l) => slug(l.replace(/^#+ /, '').trim())));
  for (const target of links(md)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
      const url = URL.canParse(target) ? new URL(target) : undefined;
      if (!url || !['http:', 'https:'].includes(url.protocol) || !allowedHosts.includes(url.host)) problems.push(`${file} links outside the repository: ${target}`);
      continue;
    }
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    if (path === '') {
      if (!anchors.has(anchor ?? '')) problems.push(`${file} links to #${anchor}, which no heading makes`);
      continue;
    }
    const abs = resolve(dirname(resolve(root, file)), decodeURI(path));
    if (relative(root, abs).startsWith('..') || path.startsWith('/')) problems.push(`${file} links outside the repository: ${target}`);
    else if (!existsSync(abs)) problems.push(`${file} links to ${target}, which does not exist`);
  }
  return problems;
}

describe('README: a product page that names everything', () => {
  it('has a CLI reference section for every command, naming each of its options', () => {
    assert.ok(COMMANDS.length >= 12);
    const reference = section(readme, '## CLI reference');
    for (const { spec } of COMMANDS) {
      const own = section(reference, `### \`jax-serve ${spec.name}\``);
      for (const o of spec.options) {
        assert.ok(own.includes(`\`${o.name}`) || (o.alias !== undefined && own.includes(`\`${o.alias}`)), `jax-serve ${spec.name}: ${o.name} is not in its README section`);
      }
    }
  });

  it('names every jaxServe.* setting in the settings table', () => {
    const conf = pkg.contributes.configuration;
    const settings = (Array.isArray(conf) ? conf : [conf]).flatMap((c) => Object.keys(c.properties));
    assert.ok(settings.length > 0 && settings.every((s) => s.startsWith('jaxServe.')));
    const table = section(readme, '## Settings');
    for (const s of settings) assert.ok(table.includes(`\`${s}\``), `setting ${s} is not in the README's settings table`);
  });

  it('names every preset id in the presets table', () => {
    assert.ok(PRESETS.length > 0);
    const table = section(readme, '## Presets');
    for (const p of PRESETS) assert.ok(table.includes(`| \`${p.id}\` |`), `preset ${p.id} has no row in the README's presets table`);
  });

  it('names every editor command by its title', () => {
    const table = section(readme, '## Editor commands');
    for (const c of pkg.contributes.commands) {
      assert.ok(table.includes(`**${title(c.title)}**`), `${c.command} ("${title(c.title)}") is not in the README's editor commands`);
    }
  });

  it('cites no issue number and no development notes', () => {
    const hit = /\bissues?\s*#?\d+/i.exec(readme);
    assert.equal(hit, null, `the README cites ${hit?.[0]}`);
    assert.ok(!readme.includes('../shared'), 'the README points at ../shared, outside the repository');
  });

  it('links only inside the repository, to files and anchors that exist (README, CONTRIBUTING, CHANGELOG)', () => {
    assert.ok(links(readme).filter((l) => l.startsWith('media/readme/') && l.endsWith('.png')).length >= 3, 'the README shows a screenshot per job');
    assert.deepEqual(linkProblems('README.md', readme), []);
    assert.deepEqual(linkProblems('CONTRIBUTING.md', read('CONTRIBUTING.md')), []);
    assert.deepEqual(linkProblems('CHANGELOG.md', read('CHANGELOG.md'), ['keepachangelog.com', 'semver.org']), []);
  });

  it('the link check finds a missing file, a ../ link, a link out, a missing anchor', () => {
    const bad = ['![a](media/readme/nope.png)', '[b](../shared/design.md)', '[c](https://example.com/x)', '[d](#nowhere)', '<img src="/etc/passwd">'];
    for (const b of bad) assert.equal(linkProblems('README.md', `# Title\n\n${b}\n`).length, 1, b);
    assert.deepEqual(linkProblems('README.md', '# Title\n\n[ok](#title) ![ok](media/readme/see.png) `[code](../x)`\n'), []);
  });
});
