// Issue 9 item 5: colours follow NO_COLOR (https://no-color.org) and the
// terminal; the bytes themselves are checked end to end in
// test/e2e/cli-daemon-log.test.ts (a pseudo-terminal).
import { describe, expect, it } from 'vitest';
import { isPretty, useColour } from '../../src/log.js';

describe('useColour', () => {
  it('colours a terminal only, and not when NO_COLOR is set to anything but empty', () => {
    expect(useColour(true, {})).toBe(true);
    expect(useColour(false, {})).toBe(false);
    expect(useColour(true, { NO_COLOR: '1' })).toBe(false);
    expect(useColour(true, { NO_COLOR: 'false' })).toBe(false);
    expect(useColour(true, { NO_COLOR: '' })).toBe(true);
  });
});

describe('isPretty', () => {
  it('--log-format decides; without it, whether the destination is a terminal', () => {
    expect(isPretty({ pretty: true })).toBe(true);
    expect(isPretty({ pretty: false })).toBe(false);
    expect(isPretty({ fd: 1 })).toBe(process.stdout.isTTY === true);
  });
});
