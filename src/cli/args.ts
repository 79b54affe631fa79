// Option parsing for every command, in one place: node's parseArgs does the
// parsing, but its errors are its own ("Unknown option '--x'. To specify a
// positional argument starting with a '-', place it at the end of the command
// after '--', ..."). The arguments are first checked here token by token, so a
// mistake is told in our words, and only then parsed strictly for the values.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit status for bad arguments or a bad config (every command). */
export const EXIT_USAGE = 2;

/** A mistake on the command line; the message is for the user as it is. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** `--name` (or `-n` as typed) for messages. */
function shown(rawName: string, name: string): string {
  return rawName.startsWith('--') ? rawName : `${rawName} (--${name})`;
}

/**
 * Checks argv against `options`: unknown options, an option that needs a
 * value and has none (or would swallow the next option), a value given to a
 * switch, a positional where none is taken. Throws UsageError in our words.
 */
export function checkArgs(argv: readonly string[], options: Options, allowPositionals: boolean): void {
  const { tokens } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (!allowPositionals) throw new UsageError(`unexpected argument '${t.value}'`);
      continue;
    }
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown option ${t.rawName}`);
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`option ${shown(t.rawName, t.name)} takes no value`);
      continue;
    }
    // `--config --json`: without '=' a value that looks like an option is a missing value.
    if (t.value === undefined || (!t.inlineValue && t.value.length > 1 && t.value.startsWith('-'))) {
      throw new UsageError(`option ${shown(t.rawName, t.name)} needs a value`);
    }
  }
}

/** parseArgs (strict) after checkArgs: the same typed result, errors in our words. */
export function parseCommandArgs<const O extends Options, const P extends boolean = false>(
  argv: readonly string[],
  options: O,
  allowPositionals?: P,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: P; strict: true }>> {
  checkArgs(argv, options, allowPositionals === true);
  try {
    return parseArgs<{ args: string[]; options: O; allowPositionals: P; strict: true }>({
      args: [...argv],
      options,
      allowPositionals: (allowPositionals ?? false) as P,
      strict: true,
    });
  } catch (err) {
    // Anything checkArgs did not foresee: parseArgs's first sentence only.
    throw new UsageError(String((err as Error).message).split('. ')[0]);
  }
}

/**
 * The one way a command reports a usage mistake: `knockwatch CMD: MESSAGE`,
 * then the usage, on stderr; returns the exit status (2).
 */
export function usageFailure(command: string, message: string, usage: string): number {
  process.stderr.write(`knockwatch ${command}: ${message}\n\n${usage}`);
  return EXIT_USAGE;
}

/** A UsageError (or a value check's Error) caught around parsing, reported as usage failure. */
export function reportUsage(command: string, err: unknown, usage: string): number {
  return usageFailure(command, err instanceof Error ? err.message : String(err), usage);
}

/**
 * For a command whose only option is --help: the exit status when argv asks
 * for help (usage on stdout, 0) or is wrong (usage failure, 2); undefined to go on.
 */
export function helpOnly(command: string, argv: readonly string[], usage: string): number | undefined {
  try {
    const { values } = parseCommandArgs(argv, { help: { type: 'boolean', short: 'h', default: false } });
    if (!values.help) return undefined;
    process.stdout.write(usage);
    return 0;
  } catch (err) {
    return reportUsage(command, err, usage);
  }
}
