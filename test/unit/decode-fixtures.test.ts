// The recorded fixtures (fixtures/manifest.json, real lab captures) decode
// with nothing malformed and exactly the knock packets the manifest counts.
// Classic pcap files are read with the decoder tests' own minimal reader, so
// this checks the decoder alone; pcapng is left to the capture-file tests.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { createDecodeStats, decodeFrame } from '../../src/decode/decode.js';
import { readPcap } from './decode-pcap.js';

interface Entry {
  readonly file: string;
  readonly linkType: number;
  readonly knockPackets: number;
}

const dir = new URL('../../fixtures/', import.meta.url);
const manifestUrl = new URL('manifest.json', dir);
const entries: Entry[] = existsSync(manifestUrl) ? (JSON.parse(readFileSync(manifestUrl, 'utf8')) as Entry[]) : [];
const classic = entries.filter((e) => e.file.endsWith('.pcap'));

describe('recorded fixtures', () => {
  it('are present', () => {
    expect(classic.length, `no classic pcap entries in ${manifestUrl.pathname}`).toBeGreaterThan(0);
  });

  it.each(classic.map((e) => [e.file, e] as const))('%s decodes to its knock packets, nothing malformed', (_name, e) => {
    const { linkType, frames } = readPcap(readFileSync(new URL(e.file, dir)), e.file);
    expect(linkType).toBe(e.linkType);
    const stats = createDecodeStats();
    for (const f of frames) decodeFrame(f, stats);
    expect(stats.malformedReasons).toEqual({});
    expect(stats.knocks).toBe(e.knockPackets);
  });
});
