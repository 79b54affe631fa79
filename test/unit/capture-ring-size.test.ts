// The default kernel ring of a live capture (issue 8 item 8): 128 MiB (2048
// of cap's 64 KiB slots, 40 ms of a 50 k packets/s flood) where memory
// allows, pinning (twice the ring) at most 1/48 of memory, never below 32 MiB.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BUFFER_BYTES, defaultBufferBytes, MIN_DEFAULT_BUFFER_BYTES } from '../../src/capture/live.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

describe('defaultBufferBytes', () => {
  it('is 128 MiB from 12 GiB of memory up', () => {
    expect(DEFAULT_BUFFER_BYTES).toBe(128 * MIB);
    expect(defaultBufferBytes(12 * GIB)).toBe(128 * MIB);
    expect(defaultBufferBytes(24 * GIB)).toBe(128 * MIB);
    expect(defaultBufferBytes(1024 * GIB)).toBe(128 * MIB);
  });

  it('scales with memory in between, in whole MiB, pinning at most 1/48 of it', () => {
    expect(defaultBufferBytes(6 * GIB)).toBe(64 * MIB);
    const eight = defaultBufferBytes(8 * GIB);
    expect(eight % MIB).toBe(0);
    expect(2 * eight).toBeLessThanOrEqual((8 * GIB) / 48);
  });

  it('never goes below 32 MiB (512 slots), however small the machine', () => {
    expect(MIN_DEFAULT_BUFFER_BYTES).toBe(32 * MIB);
    expect(defaultBufferBytes(3 * GIB)).toBe(32 * MIB);
    expect(defaultBufferBytes(512 * MIB)).toBe(32 * MIB);
  });
});
