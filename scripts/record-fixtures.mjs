#!/usr/bin/env node
// Records the replay fixtures in fixtures/: real tcpdump and dumpcap captures
// on the server side of a two-namespace lab while the client namespace knocks
// with `knockwatch knock` (or, for kernel retransmissions, plain node sockets).
//
//   npm run build && node scripts/record-fixtures.mjs [NAME...]
//
// Root only (network namespaces). With NAMEs, records only those fixtures.
// Writes fixtures/<name>.pcap[ng], the shared configs and fixtures/manifest.json.
// What is sent is fixed (ports, addresses, order, delays); timestamps, source
// ports and sequence numbers are the kernel's. Every capture is checked before
// it replaces the old one: it must hold exactly the knock packets that were sent.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = `${ROOT}fixtures`;
const CLI = `${ROOT}dist/cli.js`;
const LAB = `${ROOT}dist/lab/netns.js`;

const SERVER4 = '10.199.0.1';
const CLIENT4 = '10.199.0.2';
const EXTRA4 = '10.199.0.3';
const SERVER6 = 'fd00:6b77::1';
const CLIENT6 = 'fd00:6b77::2';

// Knockwatch configs, written as files so `replay --config` loads them.
const CONFIGS = {
  'default.yaml': `# Doors for most fixtures (see manifest.json). Loaded by knockwatch as is.
doors:
  - name: ssh
    sequence: [1234, 5678, 9012]
    window: 10s
    open: [2222]
    duration: 20s
  - name: mixed
    sequence: [7000/udp, 8000/tcp, 9000/udp]
    window: 10s
    open: [2223]
    duration: 20s
`,
  'too-slow.yaml': `# The ssh door with a short window: the too-slow fixture spaces its knocks 2 s apart.
doors:
  - name: ssh
    sequence: [1234, 5678, 9012]
    window: 3s
    open: [2222]
    duration: 20s
`,
};

const range = (from, to) => {
  const step = from <= to ? 1 : -1;
  const out = [];
  for (let p = from; p !== to + step; p += step) out.push(String(p));
  return out;
};
const SSH = ['1234', '5678', '9012'];
// The server's answers (RSTs, ICMP port unreachable) double a sweep's size and say nothing about knocks.
const NOT_SERVER4 = `not src host ${SERVER4}`;

/**
 * Each scenario: capture tool, what the client sends, and the expected result.
 * `knocks` counts the SYN/UDP packets the client namespace sends: the capture must hold exactly that many.
 */
const SCENARIOS = [
  {
    name: 'ipv4-knock',
    description: 'IPv4: 10.199.0.2 knocks 1234, 5678, 9012 (TCP SYNs, back to back). The ssh door opens.',
    expectedOpens: [{ door: 'ssh', source: CLIENT4 }],
    knocks: 3,
    send: (k) => k([SERVER4, ...SSH, '--source', CLIENT4]),
  },
  {
    name: 'ipv6-knock',
    description: 'IPv6: fd00:6b77::2 knocks 1234, 5678, 9012. The ssh door opens for the IPv6 source.',
    expectedOpens: [{ door: 'ssh', source: CLIENT6 }],
    knocks: 3,
    send: (k) => k([SERVER6, ...SSH, '--source', CLIENT6]),
  },
  {
    name: 'wrong-order',
    description: 'IPv4: 5678, 1234, 9012 — the right ports in the wrong order. Nothing opens.',
    expectedOpens: [],
    knocks: 3,
    send: (k) => k([SERVER4, '5678', '1234', '9012', '--source', CLIENT4]),
  },
  {
    name: 'wrong-port-middle',
    description: 'IPv4: 1234, 4444, 5678, 9012 — a wrong port in the middle resets the sequence. Nothing opens.',
    expectedOpens: [],
    knocks: 4,
    send: (k) => k([SERVER4, '1234', '4444', '5678', '9012', '--source', CLIENT4]),
  },
  {
    name: 'too-slow',
    config: 'too-slow.yaml',
    description: 'IPv4: 1234, 5678, 9012 spaced 2 s apart (4 s in all) against a 3 s window. Nothing opens.',
    expectedOpens: [],
    knocks: 3,
    send: (k) => k([SERVER4, ...SSH, '--delay', '2000', '--source', CLIENT4]),
    verify: (pkts) => expectSpan(pkts, 3.9, 'first to last knock'),
  },
  {
    name: 'doubled',
    description: 'IPv4: every SYN sent twice at once (1234, 1234, 5678, 5678, 9012, 9012; different source ports). The ssh door opens once.',
    expectedOpens: [{ door: 'ssh', source: CLIENT4 }],
    knocks: 6,
    send: (k) => k([SERVER4, '1234', '1234', '5678', '5678', '9012', '9012', '--source', CLIENT4]),
  },
  {
    name: 'retransmitted',
    description:
      'IPv4: the server drops the knock ports (nft in the lab), so the kernel retransmits each SYN once after ~1 s ' +
      '(same source port and sequence number) before the client gives up: 1234 x2, 5678 x2, 9012 x2. The ssh door opens once.',
    expectedOpens: [{ door: 'ssh', source: CLIENT4 }],
    knocks: 6,
    before: async (lab) => {
      const rules = `table inet kwrecord { chain in { type filter hook input priority 0; policy accept; tcp dport { 1234, 5678, 9012 } drop; }; }`;
      const r = await lab.run(lab.server, ['nft', '-f', '-'], { input: rules });
      if (r.exitCode !== 0) throw new Error(`nft in the server namespace failed: ${r.stderr}`);
    },
    send: async (_k, lab) => {
      // Keep each connect 1.5 s: the first SYN retransmission fires at ~1 s, the second at ~3 s.
      const script = `const net=require('net');(async()=>{for(const port of [1234,5678,9012]){
        const s=net.connect({host:'${SERVER4}',port,localAddress:'${CLIENT4}'});s.on('error',()=>{});
        await new Promise(r=>setTimeout(r,1500));s.destroy();}})();`;
      await mustRun(lab, ['node', '-e', script]);
    },
    verify: (pkts) => {
      for (let i = 0; i < pkts.length; i += 2) {
        const [a, b] = [pkts[i], pkts[i + 1]];
        if (!b || a.dport !== b.dport || a.sport !== b.sport) throw new Error(`expected each SYN and its retransmission in pairs, got ${fmt(pkts)}`);
      }
    },
  },
  {
    name: 'mixed-tcp-udp',
    description: 'IPv4: the mixed door, 7000/udp, 8000/tcp, 9000/udp (UDP datagrams and a SYN). The mixed door opens.',
    expectedOpens: [{ door: 'mixed', source: CLIENT4 }],
    knocks: 3,
    send: (k) => k([SERVER4, '7000:udp', '8000:tcp', '9000:udp', '--source', CLIENT4]),
  },
  {
    name: 'wrong-protocol',
    description: 'IPv4: 7000/udp, 8000/udp, 9000/udp — the mixed door with UDP where its middle step wants TCP. Nothing opens.',
    expectedOpens: [],
    knocks: 3,
    send: (k) => k([SERVER4, '7000:udp', '8000:udp', '9000:udp', '--source', CLIENT4]),
  },
  {
    name: 'sweep-ascending',
    description:
      'IPv4: a scanner-like SYN sweep of ports 1-10000 from 10.199.0.2, as fast as the client goes. It passes 1234, 5678, 9012 in order ' +
      '(knockd opens here), but with wrong ports in between. Nothing opens. Server replies not captured.',
    expectedOpens: [],
    knocks: 10000,
    filter: NOT_SERVER4,
    send: (k) => k([SERVER4, ...range(1, 10000), '--source', CLIENT4]),
  },
  {
    name: 'sweep-descending',
    description: 'IPv4: a SYN sweep of ports 10000 down to 1 from 10.199.0.2. Nothing opens. Server replies not captured.',
    expectedOpens: [],
    knocks: 10000,
    filter: NOT_SERVER4,
    send: (k) => k([SERVER4, ...range(10000, 1), '--source', CLIENT4]),
  },
  {
    name: 'two-sources',
    description:
      'IPv4: 10.199.0.3 sweeps ports 1-10000 while 10.199.0.2 knocks 1234, 5678, 9012 (100 ms apart) in the middle of it. ' +
      'The ssh door opens for 10.199.0.2 only. Server replies not captured.',
    expectedOpens: [{ door: 'ssh', source: CLIENT4 }],
    knocks: 10003,
    filter: NOT_SERVER4,
    send: async (k) => {
      const sweep = k([SERVER4, ...range(1, 10000), '--source', EXTRA4]);
      await sleep(50);
      await Promise.all([sweep, k([SERVER4, ...SSH, '--delay', '100', '--source', CLIENT4])]);
    },
    verify: (pkts) => {
      const sweep = pkts.filter((p) => p.src === EXTRA4);
      const knock = pkts.filter((p) => p.src === CLIENT4);
      const [start, end] = [sweep[0].time, sweep[sweep.length - 1].time];
      if (knock.length !== 3 || knock[0].time <= start || knock[2].time >= end) {
        throw new Error(`the knock from ${CLIENT4} did not happen during the sweep (sweep ${start}-${end}, knock ${fmt(knock)})`);
      }
    },
  },
  {
    name: 'pcapng-knock',
    ext: 'pcapng',
    tool: 'dumpcap',
    description: "pcapng written by dumpcap (Wireshark's default format): an IPv4 knock from 10.199.0.2, then an IPv6 knock from fd00:6b77::2. The ssh door opens for both.",
    expectedOpens: [
      { door: 'ssh', source: CLIENT4 },
      { door: 'ssh', source: CLIENT6 },
    ],
    knocks: 6,
    send: async (k) => {
      await k([SERVER4, ...SSH, '--source', CLIENT4]);
      await k([SERVER6, ...SSH, '--source', CLIENT6]);
    },
  },
  {
    name: 'nanosecond',
    tool: 'tcpdump-nano',
    description: 'Nanosecond-resolution pcap (tcpdump --nano, magic a1b23c4d): an IPv4 knock from 10.199.0.2. The ssh door opens.',
    expectedOpens: [{ door: 'ssh', source: CLIENT4 }],
    knocks: 3,
    send: (k) => k([SERVER4, ...SSH, '--source', CLIENT4]),
  },
  {
    name: 'any-sll2',
    tool: 'tcpdump-any',
    description:
      'tcpdump -i any: Linux cooked v2 headers (SLL2, link type 276), incoming and outgoing. An IPv4 knock from 10.199.0.2, then an IPv6 knock from fd00:6b77::2. The ssh door opens for both.',
    expectedOpens: [
      { door: 'ssh', source: CLIENT4 },
      { door: 'ssh', source: CLIENT6 },
    ],
    knocks: 6,
    send: async (k) => {
      await k([SERVER4, ...SSH, '--source', CLIENT4]);
      await k([SERVER6, ...SSH, '--source', CLIENT6]);
    },
  },
];

const TOOLS = {
  tcpdump: { linkType: 1, format: 'pcap (microseconds)' },
  'tcpdump-nano': { linkType: 1, format: 'pcap (nanoseconds)' },
  'tcpdump-any': { linkType: 276, format: 'pcap (microseconds)' },
  dumpcap: { linkType: 1, format: 'pcapng' },
};

// A 32 MiB kernel buffer: with the default 2 MiB, tcpdump lost ~4 % of a
// 10000-SYN sweep. Immediate mode, so nothing waits in a half-filled ring
// block when the capture is stopped. -Z root: write the file as root.
function captureArgv(tool, file, filter) {
  const f = filter ? [filter] : [];
  const tcpdump = (iface, ...extra) => ['tcpdump', '-i', iface, ...extra, '--immediate-mode', '-B', '32768', '-U', '-Z', 'root', '-w', file, ...f];
  switch (tool) {
    case 'tcpdump':
      return tcpdump('kw0');
    case 'tcpdump-nano':
      return tcpdump('kw0', '--nano');
    case 'tcpdump-any':
      return tcpdump('any');
    case 'dumpcap':
      return ['dumpcap', '-i', 'kw0', '-B', '32', '-q', '-w', file, ...(filter ? ['-f', filter] : [])];
    default:
      throw new Error(`unknown capture tool '${tool}'`);
  }
}

const READY = { tcpdump: 'listening on', 'tcpdump-nano': 'listening on', 'tcpdump-any': 'listening on', dumpcap: 'Capturing on' };

async function startCapture(lab, tool, file, filter) {
  const child = lab.spawn(lab.server, captureArgv(tool, file, filter), { buffer: false, stdin: 'ignore' });
  let err = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tool} did not start capturing in 5 s: ${err}`)), 5000);
    child.stderr.on('data', (d) => {
      err += String(d);
      if (err.includes(READY[tool])) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`${tool} exited early (${r.exitCode}): ${err}`));
    });
  });
  return async () => {
    child.kill('SIGINT');
    const r = await child;
    if (r.exitCode !== 0) throw new Error(`${tool} exited with ${r.exitCode}: ${err}`);
  };
}

async function mustRun(lab, argv) {
  const r = await lab.run(lab.client, argv);
  if (r.exitCode !== 0) throw new Error(`'${argv.slice(0, 4).join(' ')} ...' in the client namespace exited ${r.exitCode}: ${r.stderr}`);
}

// Client-sent knock packets as tcpdump prints them: TCP with SYN set and ACK
// clear, and UDP. tcp[] offsets do not apply to IPv6, hence the ip6[53] form
// (the TCP flags byte right after a 40-byte IPv6 header without extensions).
const KNOCK_FILTER =
  `not src host ${SERVER4} and not src host ${SERVER6} and ` +
  '(udp or (ip and tcp and tcp[13] & 0x12 == 0x02) or (ip6 and ip6[6] == 6 and ip6[53] & 0x12 == 0x02))';
// -q: no protocol decoding beyond the ports (tcpdump reads 7000/udp as AFS rx otherwise).
const LINE = /^(\d+\.\d+) (?:\S+ +\S+ +)?IP6? (\S+)\.(\d+) > \S+\.(\d+): (UDP|tcp)\b/;

async function knockPackets(file) {
  const { stdout } = await run('tcpdump', ['-r', file, '-n', '-q', '-tt', KNOCK_FILTER], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const m = LINE.exec(line);
      if (!m) throw new Error(`${file}: unexpected tcpdump line: ${line}`);
      return { time: Number(m[1]), src: m[2], sport: Number(m[3]), dport: Number(m[4]), proto: m[5] === 'UDP' ? 'udp' : 'tcp' };
    });
}

function fmt(pkts) {
  return pkts
    .slice(0, 8)
    .map((p) => `${p.src}.${p.sport}>${p.dport}/${p.proto}@${p.time}`)
    .join(', ');
}

function expectSpan(pkts, minSeconds, what) {
  const span = pkts[pkts.length - 1].time - pkts[0].time;
  if (span < minSeconds) throw new Error(`${what} took ${span.toFixed(3)} s, expected at least ${minSeconds} s`);
}

async function record(createLab, s) {
  const tool = s.tool ?? 'tcpdump';
  const file = `${s.name}.${s.ext ?? 'pcap'}`;
  const tmp = `${FIXTURES}/.recording-${file}`;
  await rm(tmp, { force: true });
  const lab = await createLab(s.name);
  try {
    if (s.before) await s.before(lab);
    const stop = await startCapture(lab, tool, tmp, s.filter);
    const k = (args) => mustRun(lab, ['node', CLI, 'knock', ...args]);
    await s.send(k, lab);
    // Let the last replies (RST, ICMP unreachable) arrive before stopping. tcpdump
    // runs in immediate mode; dumpcap hands packets over after libpcap's 1 s buffer
    // timeout, and anything still in the kernel ring when it stops is lost.
    await sleep(tool === 'dumpcap' ? 1500 : 300);
    await stop();
  } finally {
    await lab.destroy();
  }
  const pkts = await knockPackets(tmp);
  if (pkts.length !== s.knocks) throw new Error(`${file}: captured ${pkts.length} knock packets, sent ${s.knocks}: ${fmt(pkts)}`);
  if (s.verify) s.verify(pkts);
  await chmod(tmp, 0o644); // dumpcap creates its file 0600
  await rename(tmp, `${FIXTURES}/${file}`);
  // Its expected decisions carry the old capture's times: regenerate them
  // with scripts/record-fixtures-expected.mjs.
  await rm(`${FIXTURES}/${s.name}.expected.jsonl`, { force: true });
  return { file, bytes: (await stat(`${FIXTURES}/${file}`)).size };
}

function manifest() {
  return SCENARIOS.map((s) => ({
    file: `${s.name}.${s.ext ?? 'pcap'}`,
    config: s.config ?? 'default.yaml',
    expected: `${s.name}.expected.jsonl`,
    format: TOOLS[s.tool ?? 'tcpdump'].format,
    linkType: TOOLS[s.tool ?? 'tcpdump'].linkType,
    recordedWith: s.tool === 'dumpcap' ? 'dumpcap' : 'tcpdump',
    knockPackets: s.knocks,
    description: s.description,
    expectedOpens: s.expectedOpens,
  }));
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('must run as root (it builds network namespaces)');
  for (const f of [CLI, LAB]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' first`);
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown fixture(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const { createLab } = await import(LAB);
  await mkdir(FIXTURES, { recursive: true });
  for (const [name, text] of Object.entries(CONFIGS)) await writeFile(`${FIXTURES}/${name}`, text);
  await writeFile(`${FIXTURES}/manifest.json`, JSON.stringify(manifest(), null, 2) + '\n');
  const started = performance.now();
  for (const s of SCENARIOS) {
    if (wanted.length > 0 && !wanted.includes(s.name)) continue;
    const t = performance.now();
    const { file, bytes } = await record(createLab, s);
    console.log(`${file.padEnd(24)} ${String(bytes).padStart(8)} bytes  ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  console.log(`recorded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  console.error(`record-fixtures: ${err.message}`);
  process.exitCode = 1;
});
