// Port arguments for the eBPF loader, shared by the capture (which passes
// them) and the config check of the loader's limit (which counts them): each
// class of ports (first steps, other steps, open ports) as runs of consecutive
// ports of one protocol, `LOW-HIGH/proto` for a run and `PORT/proto` for a
// single port. A rotating door's range (tens of thousands of ports) is then
// one argument instead of one per port. Runs keep the order in which their
// first port was listed, so lists without neighbours come out as they went in.
import { formatPort, type PortSpec } from './types.js';

export type LoaderPortOption = '--first' | '--port' | '--open';

function key(p: PortSpec): string {
  return formatPort(p);
}

/**
 * The loader's port arguments: `steps` (each `--first` when in `first`, else
 * `--port`; all `--port`... as the loader's default when `first` is undefined),
 * then `open` ports that are not steps (`--open`). Distinct ports only.
 */
export function loaderPortArgs(steps: readonly PortSpec[], first: readonly PortSpec[] | undefined, open: readonly PortSpec[]): [LoaderPortOption, string][] {
  const firstSet = first === undefined ? undefined : new Set(first.map(key));
  const stepSet = new Set(steps.map(key));
  const classOf = (p: PortSpec): LoaderPortOption => (!stepSet.has(key(p)) ? '--open' : firstSet !== undefined && firstSet.has(key(p)) ? '--first' : '--port');
  const members = new Map<string, LoaderPortOption>();
  for (const p of steps) members.set(key(p), classOf(p));
  for (const p of open) if (!stepSet.has(key(p))) members.set(key(p), '--open');
  const emitted = new Set<string>();
  const out: [LoaderPortOption, string][] = [];
  const same = (port: number, protocol: PortSpec['protocol'], cls: LoaderPortOption): boolean => members.get(`${port}/${protocol}`) === cls;
  for (const p of [...steps, ...open]) {
    const k = key(p);
    if (emitted.has(k) || !members.has(k)) continue;
    const cls = members.get(k) as LoaderPortOption;
    let low = p.port;
    let high = p.port;
    while (low > 1 && same(low - 1, p.protocol, cls)) low--;
    while (high < 65535 && same(high + 1, p.protocol, cls)) high++;
    for (let q = low; q <= high; q++) emitted.add(`${q}/${p.protocol}`);
    out.push([cls, low === high ? `${low}/${p.protocol}` : `${low}-${high}/${p.protocol}`]);
  }
  return out;
}
