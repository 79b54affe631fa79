// Encoders for the eBPF loader's stdout records (the format ebpf/loader.c
// writes), used to feed the decoder and fake loaders in unit tests.

export function record(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length, true);
  v.setUint16(4, type, true);
  out.set(body, 8);
  return out;
}

export interface FrameFields {
  timeNs: bigint;
  wireLength: number;
  ifindex: number;
  linkType: number;
  data: Uint8Array;
}

export function frameRecord(f: FrameFields): Uint8Array {
  const body = new Uint8Array(20 + f.data.length);
  const v = new DataView(body.buffer);
  v.setBigUint64(0, f.timeNs, true);
  v.setUint32(8, f.wireLength, true);
  v.setUint32(12, f.ifindex, true);
  v.setUint16(16, f.linkType, true);
  body.set(f.data, 20);
  return record(1, body);
}

export function counterRecord(c: { seen: number; candidates: number; events: number; drops: number }): Uint8Array {
  const body = new Uint8Array(32);
  const v = new DataView(body.buffer);
  [c.seen, c.candidates, c.events, c.drops].forEach((n, i) => v.setBigUint64(i * 8, BigInt(n), true));
  return record(2, body);
}

export function readyRecord(ifaces: { name: string; ifindex: number; linkType: number }[]): Uint8Array {
  const parts: number[] = [];
  const u32 = (n: number): void => {
    parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  };
  const u16 = (n: number): void => {
    parts.push(n & 0xff, (n >>> 8) & 0xff);
  };
  u32(ifaces.length);
  for (const i of ifaces) {
    u32(i.ifindex);
    u16(i.linkType);
    u16(i.name.length);
    for (const ch of i.name) parts.push(ch.charCodeAt(0));
  }
  return record(3, Uint8Array.from(parts));
}
