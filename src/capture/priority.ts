// CPU priority of the capture path (the daemon and, inherited, its capture
// process). Issue 8 item 8: a spoofed SYN flood at the first knock port
// (45-60 k packets/s) must leave 9 of 10 real knocks registered. Every flood
// packet is a valid first step, so nothing can drop it early: the capture
// process and the daemon must keep up with all of it. Measured with
// bench/flood-first-port.mjs on the shared 2-core VM at load 9-14 (other jobs
// at nice 0): the daemon needs ~30 % of a core at 50 k packets/s, but its fair
// share there is 2/load of a core, 15-20 %, so it fell behind; the capture
// process's 2 MiB backlog filled and shed frames (62-85 k of 280-320 k),
// real first steps among them, and 8 of 10 knocks opened. At nice -10 (9.3
// times the weight of a nice-0 task) it kept up at load 9-11 (shed 0, 10 of
// 10); at load 15-18 it still fell behind and shed (README, first-port
// flood): this raises the share, it does not make the work smaller.
//
// Raising priority needs CAP_SYS_NICE (root has it). The systemd unit runs
// without it: there `Nice=-10` in the unit sets it before privileges are
// dropped, and this finds it already done. A priority already higher (a lower
// nice) is left as it is.
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The nice value the capture path asks for. */
export const CAPTURE_NICE = -10;

export interface PriorityResult {
  /** The process's nice value afterwards. */
  readonly nice: number;
  /** Set when the nice value could not be lowered to the wanted one: the system's reason. */
  readonly error?: string;
}

/**
 * Lowers the nice value of this process to `nice`, unless it is already there
 * or lower: every thread of it, since Linux keeps a nice value per thread and
 * setpriority() changes only the one named. V8's garbage-collector helpers
 * started at nice 0, and the main thread waits for them in every scavenge;
 * threads started later inherit the main thread's value.
 */
export function raisePriority(nice = CAPTURE_NICE): PriorityResult {
  const main = raiseThread(0, nice);
  if (main.error !== undefined) return main;
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    // No /proc: the main thread, which runs all JavaScript, is done.
  }
  for (const tid of tids) if (Number(tid) !== process.pid) raiseThread(Number(tid), nice);
  return main;
}

/** One thread or process (0: the calling thread). */
function raiseThread(pid: number, nice: number): PriorityResult {
  let current: number;
  try {
    current = getPriority(pid);
  } catch (err) {
    return { nice: Number.NaN, error: (err as Error).message };
  }
  if (current <= nice) return { nice: current };
  try {
    setPriority(pid, nice);
    return { nice: getPriority(pid) };
  } catch (err) {
    return { nice: current, error: (err as Error).message };
  }
}
