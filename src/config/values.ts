// The value rules of a config file, one function each, shared by the file's
// schema (schema.ts) and every door kind's keys (door-*.ts): each checks one
// value on its own and converts it (durations to ms, ports to PortSpec).
import { z } from 'zod';
import type { PortSpec } from '../types.js';
import { ValueError, describeValue, type PathSegment } from './errors.js';
import { checkDurationMax, parseDuration } from './duration.js';
import { parsePortSpec } from './port.js';
import { DOOR_NAME_RE, MAX_SOURCES_LIMIT } from '../limits.js';

export const PLACEHOLDERS = ['%IP%', '%PORT%', '%PROTO%', '%DOOR%'] as const;

/**
 * A value checked by a plain function that throws ValueError; the error
 * becomes a zod issue at this value's path. A missing required key is
 * reported here too (zod hands `undefined` to z.unknown()).
 */
export function value<T>(check: (v: unknown) => T): z.ZodType<T, unknown> {
  return z.unknown().transform((v, ctx): T => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required key is missing' });
      return z.NEVER;
    }
    try {
      return check(v);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

export function typeError(expected: string): (iss: { input?: unknown; code?: string }) => string | undefined {
  return (iss) => {
    if (iss.code !== 'invalid_type') return undefined;
    return iss.input === undefined ? 'required key is missing' : `expected ${expected}, got ${describeValue(iss.input)}`;
  };
}

export function duration(field: string, maxMs: number): z.ZodType<number, unknown> {
  return value((v) => {
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new ValueError(`expected a duration such as 500ms, 10s, 5m or 1h, got ${describeValue(v)}`);
    }
    return checkDurationMax(field, parseDuration(v), maxMs);
  });
}

export const port = value((v): PortSpec => {
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new ValueError(`expected a port such as 1234 or 1234/udp, got ${describeValue(v)}`);
  }
  return parsePortSpec(v);
});

export function portList(what: string, max?: number): z.ZodType<PortSpec[], unknown> {
  let list = z.array(port, { error: typeError(`a list of ${what} such as [1234, 5678/udp]`) }).min(1, {
    error: `must not be empty: list at least one of the ${what}`,
  });
  if (max !== undefined) {
    list = list.max(max, {
      error: (iss) => `has ${Array.isArray(iss.input) ? iss.input.length : '?'} steps; at most ${max} are allowed (knockd's limit)`,
    });
  }
  return list;
}

export const doorName = value((v): string => {
  if (typeof v !== 'string') throw new ValueError(`expected a door name, got ${describeValue(v)}`);
  if (!DOOR_NAME_RE.test(v)) {
    throw new ValueError(
      `invalid door name '${v}': use 1-32 letters, digits, '_' or '-' (it becomes part of firewall set and chain names)`,
    );
  }
  return v;
});

/** An argv array run without a shell; element problems are reported at their own index. */
export const command: z.ZodType<string[], unknown> = z.unknown().transform((v, ctx): string[] => {
  const fail = (message: string, path: PathSegment[] = []): never => {
    ctx.addIssue({ code: 'custom', message, path });
    return z.NEVER;
  };
  if (!Array.isArray(v)) {
    const hint = typeof v === 'string' ? ' (commands are argument arrays, run without a shell)' : '';
    return fail(`expected an argument list such as [logger, "opened %IP%"], got ${describeValue(v)}${hint}`);
  }
  if (v.length === 0) return fail('must not be empty: the first element is the program to run');
  let ok = true;
  v.forEach((arg: unknown, i) => {
    const problem = commandArgProblem(arg, i);
    if (problem !== undefined) {
      ok = false;
      ctx.addIssue({ code: 'custom', message: problem, path: [i] });
    }
  });
  return ok ? (v as string[]) : z.NEVER;
});

function commandArgProblem(arg: unknown, index: number): string | undefined {
  if (typeof arg !== 'string') return `expected a string, got ${describeValue(arg)}`;
  if (index === 0 && arg.trim() === '') return 'the program name must not be empty';
  if (arg.includes('\0')) return 'contains a NUL character';
  // Only %UPPER_CASE% words count as placeholders, so date formats like
  // +%Y%m%d pass through untouched.
  for (const m of arg.matchAll(/%[A-Z][A-Z_]+%/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[0])) {
      return `unknown placeholder '${m[0]}' (known: ${PLACEHOLDERS.join(', ')})`;
    }
  }
  return undefined;
}

export const interfaceName = value((v): string => {
  if (typeof v !== 'string') throw new ValueError(`expected an interface name such as eth0 or any, got ${describeValue(v)}`);
  // The kernel's own rule (dev_valid_name): 1-15 bytes, no '/', ':' or whitespace.
  if (v === '' || Buffer.byteLength(v) > 15 || v === '.' || v === '..' || /[\s/:]/.test(v)) {
    throw new ValueError(`invalid interface name '${v}': 1-15 characters without '/', ':' or spaces`);
  }
  return v;
});

export const maxSources = value((v): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new ValueError(`expected a positive integer, got ${describeValue(v)}`);
  }
  if (v > MAX_SOURCES_LIMIT) throw new ValueError(`${v} is above the limit ${MAX_SOURCES_LIMIT}`);
  return v;
});

/**
 * A YAML mapping with these keys. zod's object check passes any JS object, so
 * a `!!binary` value (a Buffer), `!!set`, `!!omap` or a timestamp would be
 * taken apart key by key: a `!!binary` document gave 102 "unknown key"
 * messages naming Buffer methods. Anything but a plain mapping is one message.
 */
export function mapping<S extends z.core.$ZodLooseShape>(shape: S, expected: string) {
  return z
    .custom<Record<string, unknown>>(isPlainMapping, {
      error: (iss) => (iss.input === undefined ? 'required key is missing' : `expected ${expected}, got ${describeValue(iss.input)}`),
    })
    .pipe(z.strictObject(shape));
}

export function isPlainMapping(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

