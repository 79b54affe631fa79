// Gate for tests that need root and network namespaces: they run in CI (root)
// and skip elsewhere with the reason printed, never passing silently.
import { describe } from 'vitest';
import { labUnavailableReason } from '../../src/lab/netns.js';

export const labSkipReason: string | undefined = await labUnavailableReason();

/** describe() that runs only where the namespace lab can be built; prints why not. */
export function describeLab(name: string, fn: () => void): void {
  if (labSkipReason) console.warn(`[skipped] ${name}: ${labSkipReason}`);
  describe.skipIf(labSkipReason !== undefined)(name, fn);
}
