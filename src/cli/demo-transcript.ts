// The demo's readable transcript: one line per event, stamped with seconds
// since the demo started and tagged with who acted (lab, client, server,
// daemon), plus the pass/fail checks that decide the exit code.
import type { DaemonLogLine } from '../lab/daemon-process.js';

export interface Transcript {
  /** A line tagged with the actor. */
  say(actor: 'lab' | 'client' | 'server' | 'daemon' | 'demo', text: string): void;
  /** A heading between scenarios. */
  heading(text: string): void;
  /** Record an expectation; prints ok/FAILED and remembers failures. */
  check(what: string, ok: boolean, detail: string): boolean;
  /** Plain text without a stamp (explanations). */
  note(text: string): void;
  /** Print nothing more (after an interruption the rest is noise). */
  silence(): void;
  readonly failures: readonly string[];
}

export function createTranscript(out: (text: string) => void = (t) => process.stdout.write(t)): Transcript {
  const start = performance.now();
  let silent = false;
  const write = (text: string): void => {
    if (!silent) out(text);
  };
  const failures: string[] = [];
  const stamp = (): string => `[${((performance.now() - start) / 1000).toFixed(2).padStart(6)}s]`;
  return {
    say(actor, text) {
      write(`${stamp()} ${actor.padEnd(6)}  ${text}\n`);
    },
    heading(text) {
      write(`\n== ${text}\n`);
    },
    check(what, ok, detail) {
      write(`${stamp()} ${ok ? 'ok    ' : 'FAILED'}  ${what}: ${detail}\n`);
      if (!ok) failures.push(`${what}: ${detail}`);
      return ok;
    },
    note(text) {
      write(`${text}\n`);
    },
    silence() {
      silent = true;
    },
    failures,
  };
}

function clock(iso: unknown): string {
  if (typeof iso !== 'string') return String(iso);
  // HH:MM:SS.mmm is enough to compare with the lines around it.
  const m = /T(\d\d:\d\d:\d\d\.\d\d\d)/.exec(iso);
  return m ? m[1] : iso;
}

function list(v: unknown): string {
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/** A daemon log line as one readable sentence, or undefined for lines the demo does not show. */
export function describeDaemonLine(line: DaemonLogLine): string | undefined {
  switch (line.msg) {
    case 'knockwatch running':
      return `running: capture ${String(line.capture)} on ${String(line.interface)}, firewall ${String(line.firewall)}, doors ${list(line.doors)}`;
    case 'live capture open':
      return `live capture open on ${String(line.interface)} (libpcap, link type ${String(line.linkType)})`;
    case 'eBPF capture attached':
      return 'eBPF capture attached';
    case 'nftables table installed':
      return `nftables table ${String(line.table)} installed`;
    case 'access opened':
    case 'access refreshed':
      return `${line.msg}: door ${String(line.door)} for ${String(line.source)} -> ${list(line.ports)} until ${clock(line.until)}`;
    case 'firewall open (or refresh) applied':
    case 'firewall close applied':
      return `firewall: ${String(line.command)} <<< ${String(line.input).split('\n').join('; ')}`;
    case 'access closed':
      return `access closed: door ${String(line.door)} for ${String(line.source)} -> ${list(line.ports)} (${String(line.reason)})`;
    case 'sequence reset': {
      const port = line.port === undefined ? '' : ` at ${String(line.port)}/${String(line.protocol)}`;
      return `sequence reset: door ${String(line.door)} for ${String(line.source)} after ${String(line.step)} step(s), reason ${String(line.reason)}${port}`;
    }
    case 'shutting down':
      return `shutting down (${String(line.why)})`;
    case 'nftables table removed':
      return `nftables table ${String(line.table)} removed`;
    case 'knockwatch stopped':
      return `stopped: ${String(line.knocks)} knock packets seen, ${String(line.opens)} opened, ${String(line.closes)} closed, ${String(line.resets)} resets`;
    default:
      // Warnings and errors always show: they explain a failed scenario.
      if (line.level >= 40) return `${line.level >= 50 ? 'ERROR' : 'warning'}: ${line.msg}${line.err !== undefined ? ` (${String(line.err)})` : ''}`;
      return undefined;
  }
}
