// The start-up warning about missing capabilities reads CapEff, not the uid:
// a service user with ambient CAP_NET_ADMIN and CAP_NET_RAW lacks nothing.
import { describe, expect, it } from 'vitest';
import { missingCapabilities } from '../../src/cli/capabilities.js';

const status = (capEff: string): string => `Name:\tnode\nUid:\t999\t999\t999\t999\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

describe('missingCapabilities', () => {
  it('finds nothing missing for root (all bits) and for a user holding exactly the two', () => {
    expect(missingCapabilities(status('000001ffffffffff'))).toEqual([]);
    expect(missingCapabilities(status('0000000000003000'))).toEqual([]);
  });

  it('names each missing capability', () => {
    expect(missingCapabilities(status('0000000000000000'))).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(missingCapabilities(status('0000000000001000'))).toEqual(['CAP_NET_RAW']);
    expect(missingCapabilities(status('0000000000002000'))).toEqual(['CAP_NET_ADMIN']);
  });

  it('cannot tell without a CapEff line', () => {
    expect(missingCapabilities('Name:\tnode\n')).toBeUndefined();
  });
});
