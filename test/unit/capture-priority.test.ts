// The capture path's CPU priority (src/capture/priority.ts, issue 8 item 8).
// Each case runs in its own node process, so the test runner's own priority
// is never changed: every thread of the process must end at the wanted nice
// value (Linux keeps one per thread), a value already lower is kept, and
// without CAP_SYS_NICE the refusal is reported rather than thrown.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { isRoot } from '../../src/lab/netns.js';

const MODULE = fileURLToPath(new URL('../../dist/capture/priority.js', import.meta.url));
const built = existsSync(MODULE);
if (!built) console.warn('[skipped] capture priority: run npm run build first (the cases import dist/capture/priority.js)');
const root = isRoot();
if (!root) console.warn('[skipped] capture priority (raising): needs root (CAP_SYS_NICE)');

/** Runs raisePriority(nice) in a fresh node process started at nice `start`; returns its result and its threads' nice values. */
async function inChild(nice: number, start = 0, asUser?: string): Promise<{ result: { nice: number; error?: string }; threads: number[] }> {
  const script = [
    `const { raisePriority } = await import(${JSON.stringify(MODULE)});`,
    "const { readdirSync, readFileSync } = await import('node:fs');",
    `const result = raisePriority(${nice});`,
    "const threads = readdirSync('/proc/self/task').map((t) => { const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); });",
    'console.log(JSON.stringify({ result, threads }));',
  ].join('\n');
  const node = [process.execPath, '--input-type=module', '-e', script];
  const argv = ['nice', '-n', String(start), ...(asUser ? ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', ...node] : node)];
  const r = await execa(argv[0], argv.slice(1), { reject: false, timeout: 30_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { result: { nice: number; error?: string }; threads: number[] };
}

describe.skipIf(!built)('raisePriority', () => {
  it.skipIf(!root)('lowers the nice value of every thread of the process, not only the main one', async () => {
    const { result, threads } = await inChild(-10);
    expect(result).toEqual({ nice: -10 });
    expect(threads.length).toBeGreaterThan(1); // V8's helper threads exist by then
    expect(new Set(threads)).toEqual(new Set([-10]));
  });

  it.skipIf(!root)('keeps a priority that is already higher (set by the service unit, say)', async () => {
    const { result, threads } = await inChild(-10, -15);
    expect(result).toEqual({ nice: -15 });
    expect(new Set(threads)).toEqual(new Set([-15]));
  });

  it.skipIf(!root)('reports, without throwing, that an unprivileged process may not raise it', async () => {
    const { result, threads } = await inChild(-10, 0, '65534');
    expect(result.nice).toBe(0);
    expect(result.error).toMatch(/permission|EACCES|EPERM/i);
    expect(new Set(threads)).toEqual(new Set([0]));
  });
});
