// A door's optional startCommand / stopCommand: argument arrays run without a
// shell, with placeholders substituted inside each argument:
//   %IP%    the source address          %DOOR%  the door name
//   %PORT%  one opened port number      %PROTO% that port's protocol (tcp/udp)
// If any argument mentions %PORT% or %PROTO%, the command runs once per port
// of the access (so `iptables ... -p %PROTO% --dport %PORT%` works for doors
// that open several ports); otherwise it runs once.
import type { PortSpec } from '../types.js';
import { FirewallCommandError, formatCommand, runChecked, type Runner } from './run.js';
import type { FirewallLogger } from './types.js';

export interface DoorCommandContext {
  readonly door: string;
  readonly source: string;
  readonly ports: readonly PortSpec[];
}

export type DoorCommandPhase = 'start' | 'stop';

/** One or more of a door's commands failed; the firewall change itself had been applied. */
export class DoorCommandError extends Error {
  override readonly name = 'DoorCommandError';
  constructor(
    readonly door: string,
    readonly phase: DoorCommandPhase,
    readonly failures: readonly FirewallCommandError[],
  ) {
    super(`door '${door}' ${phase} command failed: ${failures.map((f) => f.message).join('; ')}`);
  }
}

export const DEFAULT_DOOR_COMMAND_TIMEOUT_MS = 10_000;

function substitute(arg: string, ctx: DoorCommandContext, port?: PortSpec): string {
  let out = arg.replaceAll('%IP%', ctx.source).replaceAll('%DOOR%', ctx.door);
  if (port) out = out.replaceAll('%PORT%', String(port.port)).replaceAll('%PROTO%', port.protocol);
  return out;
}

/** The argv arrays to run for a command template. */
export function expandCommand(template: readonly string[], ctx: DoorCommandContext): string[][] {
  if (template.length === 0 || template[0] === '') throw new Error(`door '${ctx.door}': empty command`);
  const perPort = template.some((a) => a.includes('%PORT%') || a.includes('%PROTO%'));
  if (!perPort) return [template.map((a) => substitute(a, ctx))];
  return ctx.ports.map((p) => template.map((a) => substitute(a, ctx, p)));
}

/** Run every expansion (all of them, even after a failure) and report failures together. */
export async function runDoorCommand(
  runner: Runner,
  phase: DoorCommandPhase,
  template: readonly string[],
  ctx: DoorCommandContext,
  logger: FirewallLogger,
  timeoutMs: number = DEFAULT_DOOR_COMMAND_TIMEOUT_MS,
): Promise<void> {
  const failures: FirewallCommandError[] = [];
  for (const [file, ...args] of expandCommand(template, ctx)) {
    try {
      await runChecked(runner, { file, args, timeoutMs });
      logger.info({ door: ctx.door, source: ctx.source, phase, command: formatCommand(file, args) }, 'door command ran');
    } catch (err) {
      if (!(err instanceof FirewallCommandError)) throw err;
      failures.push(err);
    }
  }
  if (failures.length > 0) throw new DoorCommandError(ctx.door, phase, failures);
}
