import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Files that make heavy traffic (SYN sweeps, floods, batches of thousands of
 * spoofed opens, address churn several times a second). They run one at a
 * time after everything else, never beside another file's timed checks: the
 * 10,000-SYN sweep beside the daemon scenarios made them miss a 10 s access
 * at load 15 (issue 9).
 */
const ALONE = [
  'test/e2e/daemon-sweep.test.ts',
  'test/e2e/ebpf-capture.test.ts',
  'test/e2e/hardening/address-churn.test.ts',
  'test/e2e/hardening/firewall-batching.test.ts',
  'test/e2e/hardening/pcap-flood.test.ts',
];

/**
 * Files run side by side by this many workers. The e2e files spend most of
 * their time waiting for real expiries (8-12 s accesses), not on the CPU, so
 * more workers than cores pays: vitest's default on 2 cores is 1 (cores - 1),
 * and the suite took 8.6-11 min one file at a time. KW_TEST_WORKERS overrides.
 */
const SIDE_BY_SIDE = Number(process.env['KW_TEST_WORKERS'] ?? 4);

/**
 * The longest files (20-60 s each with 4 workers at load 11) start first, so
 * the last one does not begin when the others are done. Without a cache of
 * earlier runs (a fresh clone, CI) vitest starts the largest files first, and
 * the four daemon-<firewall>-<capture> files are three lines each: they
 * started 185 s into a 238 s group.
 */
const SLOW_FIRST = [
  'test/e2e/hardening/clean-stop.test.ts',
  'test/e2e/daemon-nftables-pcap.test.ts',
  'test/e2e/daemon-iptables-pcap.test.ts',
  'test/e2e/daemon-nftables-ebpf.test.ts',
  'test/e2e/daemon-iptables-ebpf.test.ts',
  'test/e2e/fixtures-replay.test.ts',
  'test/e2e/service-unit.test.ts',
  'test/e2e/cli-daemon-log.test.ts',
  'test/e2e/knock-client.test.ts',
  'test/unit/capture-fuzz.test.ts',
  'test/e2e/firewall-iptables.test.ts',
  'test/e2e/cli-errors.test.ts',
  'test/e2e/nft-session.test.ts',
  'test/e2e/firewall-nftables.test.ts',
];

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = SLOW_FIRST.findIndex((p) => f.moduleId.endsWith(`/${p}`));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    // Array sort is stable: the rest keep vitest's order (cached durations, else size).
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    sequence: { sequencer: SlowFirstSequencer },
    projects: [
      {
        extends: true,
        test: {
          name: 'side-by-side',
          include: ['test/**/*.test.ts'],
          exclude: ALONE,
          maxWorkers: SIDE_BY_SIDE,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
