#!/usr/bin/env node
// Writes fixtures/<name>.expected.jsonl: the open/close decisions of
// `knockwatch replay --json` for each capture in fixtures/manifest.json, but
// only where the replay agrees with the scenario (its opens, as {door, source},
// equal the manifest's expectedOpens). A disagreement is printed and its
// expected file left untouched: it is a finding to fix, not a new truth.
//
//   npm run build && node scripts/record-fixtures-expected.mjs [NAME...]
//
// Exit 0 when every selected fixture agrees, 1 otherwise. Needs no root.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = `${ROOT}fixtures`;
const CLI = `${ROOT}dist/cli.js`;

const key = (o) => `${o.door} ${o.source}`;

async function replay(entry) {
  const { stdout } = await run('node', [CLI, 'replay', `${FIXTURES}/${entry.file}`, '--config', `${FIXTURES}/${entry.config}`, '--json', '--quiet'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
  const manifest = JSON.parse(readFileSync(`${FIXTURES}/manifest.json`, 'utf8'));
  const wanted = process.argv.slice(2);
  let failed = 0;
  for (const entry of manifest) {
    const name = entry.file.replace(/\.pcap(ng)?$/, '');
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    const lines = await replay(entry);
    const opens = lines.map((l) => JSON.parse(l)).filter((d) => d.type === 'open');
    const got = opens.map(key).sort();
    const want = entry.expectedOpens.map(key).sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      failed++;
      console.log(`MISMATCH ${entry.file}: replay opened [${got.join('; ')}], scenario expects [${want.join('; ')}] (${name}.expected.jsonl not written)`);
      continue;
    }
    await writeFile(`${FIXTURES}/${name}.expected.jsonl`, lines.map((l) => `${l}\n`).join(''));
    console.log(`ok       ${entry.file}: ${opens.length} open(s), ${lines.length} line(s)`);
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((err) => {
  console.error(`record-fixtures-expected: ${err.message}`);
  process.exitCode = 1;
});
