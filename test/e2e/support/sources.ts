// Extra source addresses on the client's kw0, so every scenario knocks from
// a source with no history: no scenario waits for another's access to end.
// Addresses are added only inside the lab's client namespace.
import type { Lab } from '../../../src/lab/netns.js';

export interface SourcePool {
  /** A fresh, never used source address of this family. */
  next(family: 4 | 6): string;
}

/** 10.199.0.10.. and fd00:6b77::100.. (away from the lab's .1/.2/.3 and ::1/::2/::3). */
export async function addSourcePool(lab: Lab, count: number): Promise<SourcePool> {
  if (count < 1 || count > 200) throw new Error(`source pool size ${count} out of range 1-200`);
  const v4 = Array.from({ length: count }, (_, i) => `10.199.0.${10 + i}`);
  const v6 = Array.from({ length: count }, (_, i) => `fd00:6b77::${(0x100 + i).toString(16)}`);
  const batch = [
    ...v4.map((a) => `addr add ${a}/24 dev ${lab.client.ifname}`),
    ...v6.map((a) => `addr add ${a}/64 dev ${lab.client.ifname} nodad`),
  ].join('\n');
  const r = await lab.run(lab.client, ['ip', '-batch', '-'], { input: `${batch}\n` });
  if (r.exitCode !== 0) throw new Error(`adding source addresses failed: ${r.stderr}`);
  const used = { 4: 0, 6: 0 };
  return {
    next(family) {
      const list = family === 4 ? v4 : v6;
      if (used[family] >= list.length) throw new Error(`source pool exhausted (${list.length} IPv${family} addresses)`);
      return list[used[family]++];
    },
  };
}
