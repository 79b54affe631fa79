// Recording runner for the firewall unit tests: remembers every command and
// answers from a script instead of running anything.
import type { CommandRequest, CommandResult, Runner } from '../../src/firewall/run.js';
import type { Door } from '../../src/types.js';

export interface Recorder {
  readonly runner: Runner;
  readonly calls: CommandRequest[];
}

export type Answer = (req: CommandRequest) => Partial<CommandResult> | undefined;

export function recorder(answer: Answer = () => undefined): Recorder {
  const calls: CommandRequest[] = [];
  const runner: Runner = async (req) => {
    calls.push(req);
    const a = answer(req) ?? {};
    return { exitCode: a.exitCode ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
  };
  return { runner, calls };
}

export const sshDoor: Door = {
  kind: 'sequence',
  name: 'ssh',
  sequence: [
    { port: 1111, protocol: 'tcp' },
    { port: 2222, protocol: 'udp' },
  ],
  windowMs: 5000,
  open: [{ port: 2222, protocol: 'tcp' }],
  durationMs: 20_000,
};

export const webDoor: Door = {
  kind: 'sequence',
  name: '9web-x',
  sequence: [{ port: 7000, protocol: 'tcp' }],
  windowMs: 5000,
  open: [
    { port: 443, protocol: 'tcp' },
    { port: 2222, protocol: 'tcp' },
    { port: 53, protocol: 'udp' },
  ],
  durationMs: 20_000,
};
