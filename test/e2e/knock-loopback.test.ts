// The knock client's library API over loopback (no root needed): datagrams
// arrive in order with the payload, checkPort tells a listener from a closed port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { checkPort, knock } from '../../src/client/knock.js';

function udpSink(): Promise<{ socket: dgram.Socket; port: number; got: string[] }> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const got: string[] = [];
    socket.bind(0, '127.0.0.1', () => {
      const port = socket.address().port;
      socket.on('message', (msg) => got.push(`${port}:${msg.toString('hex')}`));
      resolve({ socket, port, got });
    });
  });
}

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('knock client on loopback', () => {
  let server: net.Server;
  let listenPort = 0;
  let closedPort = 0;

  beforeAll(async () => {
    server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    listenPort = (server.address() as net.AddressInfo).port;
    // A port that was just free: bind and release it.
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as net.AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));
  });
  afterAll(() => {
    server.close();
  });

  it('sends one datagram per UDP step, in order, with the payload (default: 4 zero bytes)', async () => {
    const a = await udpSink();
    const b = await udpSink();
    const steps = [a.port, b.port, a.port].map((port) => ({ port, protocol: 'udp' as const }));
    await knock({ host: '127.0.0.1', steps, delayMs: 0, payload: Buffer.from('hi') });
    await knock({ host: '127.0.0.1', steps: [steps[1]], delayMs: 0 });
    await until(() => a.got.length + b.got.length === 4);
    expect(a.got).toEqual([`${a.port}:6869`, `${a.port}:6869`]);
    expect(b.got).toEqual([`${b.port}:6869`, `${b.port}:00000000`]);
    a.socket.close();
    b.socket.close();
  });

  it('waits --delay between knocks', async () => {
    const a = await udpSink();
    const times: number[] = [];
    a.socket.on('message', () => times.push(performance.now()));
    const steps = [1, 2, 3].map(() => ({ port: a.port, protocol: 'udp' as const }));
    const started = performance.now();
    await knock({ host: '127.0.0.1', steps, delayMs: 80 });
    const took = performance.now() - started;
    await until(() => times.length === 3);
    // The client's own time: two waits of 80 ms (timers never fire early).
    // Arrival gaps only say the order: the receiver shares this event loop,
    // and under stress-ng --cpu 2 with 4 workers a late first 'message'
    // handler made an 80 ms gap look like 49 ms.
    expect(took).toBeGreaterThanOrEqual(2 * 80);
    expect(times[1]).toBeGreaterThan(times[0]);
    expect(times[2]).toBeGreaterThan(times[1]);
    a.socket.close();
  });

  it('a TCP knock returns at once whether or not anything listens', async () => {
    const started = performance.now();
    await knock({ host: '127.0.0.1', steps: [listenPort, closedPort].map((port) => ({ port, protocol: 'tcp' as const })), delayMs: 0 });
    // Idle this takes ~5 ms; the bound only has to stay far below a connect
    // wait (a dropped SYN: seconds of retries), with room for a busy machine.
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('checkPort: open for a listener, refused for a free port', async () => {
    expect(await checkPort('127.0.0.1', listenPort, 1000)).toBe('open');
    expect(await checkPort('127.0.0.1', closedPort, 1000)).toBe('refused');
    // Retrying a refused port lasts until the timeout, then reports refused.
    const started = performance.now();
    expect(await checkPort('127.0.0.1', closedPort, 400, undefined, { retryUntilTimeout: true })).toBe('refused');
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });
});
