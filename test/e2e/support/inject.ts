// Raw frames out of the client's interface, in order, for the tests that need
// packets no socket would send (crafted headers, spoofed sources): an
// AF_PACKET socket in python3, fed length-prefixed frames on stdin. It is
// pinned to one CPU: veth hands each frame to the sending CPU's backlog, so
// the frames of a sequence are received (and captured) in the order sent.
import type { Lab } from '../../../src/lab/netns.js';

const INJECT = `
import os, socket, struct, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
data = sys.stdin.buffer.read()
i = n = 0
while i < len(data):
    (size,) = struct.unpack_from('<H', data, i)
    s.send(data[i + 2:i + 2 + size])
    i += 2 + size
    n += 1
print(n)
`;

/** Sends the frames from the lab's client interface; throws unless every one was sent. */
export async function injectFrames(lab: Lab, frames: readonly Uint8Array[]): Promise<void> {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const size = Buffer.alloc(2);
    size.writeUInt16LE(f.length);
    parts.push(size, Buffer.from(f));
  }
  const r = await lab.run(lab.client, ['python3', '-c', INJECT, lab.client.ifname], { input: Buffer.concat(parts) });
  if (r.exitCode !== 0 || Number(r.stdout) !== frames.length) throw new Error(`frame injector failed (${r.exitCode}): ${r.stderr}`);
}
