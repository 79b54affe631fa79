// Issue 8 item 11: check-config accepted 130 doors x 32 steps (4,160 knock
// ports), which the eBPF loader (at most 4,096, MAX_PORTS in ebpf/loader.c)
// then refused at start with a misleading "bad --first". The config loader
// now knows the limit: an error for the capture that will run, a check-config
// warning for the other one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli/check-config.js';
import { ConfigError, EBPF_MAX_PORTS, exceededBackendLimits, parseConfig } from '../../src/config/index.js';

/**
 * `doors` doors of `steps` steps, every port distinct (3 apart, so no two
 * steps are neighbours). Each door opens the first step of the next door, so
 * open ports add no distinct port unless `extraOpen`.
 */
function manyPorts(doors: number, steps: number, capture: 'pcap' | 'ebpf', extraOpen = false): string {
  const port = (door: number, step: number): number => 1024 + (door * steps + step) * 3;
  const lines = [`capture: ${capture}`, 'firewall: none', 'doors:'];
  for (let d = 0; d < doors; d++) {
    const open = d === 0 && extraOpen ? 60000 : port((d + 1) % doors, 0);
    lines.push(
      `  - name: d${d}`,
      `    sequence: [${Array.from({ length: steps }, (_, s) => port(d, s)).join(', ')}]`,
      '    window: 10s',
      `    open: [${open}]`,
      '    duration: 20s',
    );
  }
  return `${lines.join('\n')}\n`;
}

function problems(text: string, options = {}): ConfigError {
  try {
    parseConfig(text, 'k.yaml', options);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('backend limits in the config loader', () => {
  test('the limit is the loader MAX_PORTS', () => {
    expect(EBPF_MAX_PORTS).toBe(4096);
  });

  test('exactly 4,096 distinct ports are fine for eBPF; 4,097 are refused, at the doors key, naming the limit', () => {
    expect(parseConfig(manyPorts(128, 32, 'ebpf'), 'k.yaml').doors).toHaveLength(128);
    const err = problems(manyPorts(128, 32, 'ebpf', true));
    expect(err.problems).toEqual([
      {
        path: 'doors',
        line: 3,
        column: 1,
        message:
          'the doors use 4097 distinct ports (knock steps and open ports); capture ebpf takes at most 4096 (MAX_PORTS of its loader): use fewer ports, or capture: pcap, which has no port limit',
      },
    ]);
  });

  test('130 doors x 32 steps (the issue): refused for ebpf, accepted for pcap, refused for pcap run with --capture ebpf', () => {
    const err = problems(manyPorts(130, 32, 'ebpf'));
    expect(err.message).toContain('k.yaml:3:1: doors: the doors use 4160 distinct ports');
    expect(err.message).not.toContain('--first');
    const pcap = manyPorts(130, 32, 'pcap');
    expect(parseConfig(pcap, 'k.yaml').capture).toBe('pcap');
    expect(problems(pcap, { capture: 'ebpf' }).problems[0].message).toMatch(/capture ebpf takes at most 4096 .*\(selected by --capture\)$/);
    expect(exceededBackendLimits(parseConfig(pcap, 'k.yaml').doors).map((l) => l.capture)).toEqual(['ebpf']);
  });
});

describe('check-config and the other backend', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function checkConfig(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const path = join(dir, 'k.yaml');
    writeFileSync(path, text);
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
    try {
      return { code: await main([path]), stdout, stderr };
    } finally {
      vi.restoreAllMocks();
    }
  }

  test('a pcap config over the eBPF limit passes with a warning naming the limit', async () => {
    const r = await checkConfig(manyPorts(130, 32, 'pcap'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^knockwatch check-config: warning: .*k\.yaml: doors: the doors use 4160 distinct ports.*capture ebpf takes at most 4096.*`run --capture ebpf` would refuse it\)\n$/);
  });

  test('an eBPF config over the limit fails with exit 2 and says which limit', async () => {
    const r = await checkConfig(manyPorts(130, 32, 'ebpf'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('capture ebpf takes at most 4096 (MAX_PORTS of its loader)');
  });

  test('a small config: no warning', async () => {
    const r = await checkConfig(manyPorts(2, 3, 'pcap'));
    expect(r).toMatchObject({ code: 0, stderr: '' });
  });
});
