// parseConfig: YAML text -> validated KnockwatchConfig, or a ConfigError that
// lists every problem found, each with its path and line.
import { LineCounter, parseDocument } from 'yaml';
import type { CaptureKind, KnockwatchConfig } from '../types.js';
import { exceededBackendLimits } from './backend-limits.js';
import { crossChecks, type PathProblem } from './checks.js';
import { ConfigError, formatPath, type ConfigProblem, type PathSegment } from './errors.js';
import { isEmptyScalar, locate, nodeLocation, resolveFailureNode } from './locate.js';
import { knownDoorKeys } from './door-kinds.js';
import { CONFIG_KEYS, configSchema, type RawConfig } from './schema.js';
import { userChecks } from './users.js';
import { rotatingChecks } from './door-rotating.js';

/** Aliases can expand exponentially ("billion laughs"); a config needs few. */
const MAX_ALIAS_COUNT = 100;

/** Problems listed in one ConfigError; the rest are counted. */
const MAX_REPORTED = 50;

export interface ParseOptions {
  /** The capture backend that will run (a --capture override); its limits apply. Default: the file's own. */
  readonly capture?: CaptureKind;
}

export function parseConfig(text: string, fileName: string, options: ParseOptions = {}): KnockwatchConfig {
  const lineCounter = new LineCounter();
  // merge: `<<: *defaults` merge keys (YAML 1.1), so doors can share settings.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const yamlProblems = [...doc.errors, ...doc.warnings].map((e): ConfigProblem => {
    const pos = lineCounter.linePos(e.pos[0]);
    return { path: '', line: pos.line, column: pos.col, message: yamlMessage(e.code, e.message, text, e.pos) };
  });
  if (yamlProblems.length > 0) throw new ConfigError(fileName, sortProblems(yamlProblems));

  // A file of only comments has no contents; a bare `---` has an empty null scalar.
  if (doc.contents === null || isEmptyScalar(doc.contents)) {
    throw new ConfigError(fileName, [{ path: '', line: 1, column: 1, message: 'the file is empty: a config file must define at least its doors' }]);
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // Unresolved or excessive aliases surface here, not as document errors.
    const message = err instanceof Error ? err.message : String(err);
    const at = resolveFailureNode(doc, message);
    const loc = (at ? nodeLocation(at, lineCounter) : undefined) ?? { line: 1, column: 1 };
    throw new ConfigError(fileName, [{ path: '', line: loc.line, column: loc.column, message: `cannot resolve the YAML document: ${message}` }]);
  }

  const located: ConfigProblem[] = [];
  const add = (p: PathProblem, atKey = false): void => {
    const loc = locate(doc, lineCounter, p.path, atKey);
    located.push({ path: formatPath(p.path), line: loc?.line, column: loc?.column, message: p.message });
  };

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        const known = path.length === 0 ? CONFIG_KEYS : knownDoorKeys(isRecord(raw) && Array.isArray(raw['doors']) ? raw['doors'][Number(path[1])] : undefined);
        for (const key of issue.keys) add({ path: [...path, key], message: unknownKeyMessage(key, known) }, true);
      } else {
        add({ path, message: issue.message });
      }
    }
  }
  if (isRecord(raw)) for (const p of crossChecks(raw['doors'])) add(p);
  if (isRecord(raw)) for (const p of userChecks(raw)) add(p);
  if (isRecord(raw)) for (const p of rotatingChecks(raw['doors'])) add(p);

  if (located.length > 0 || !result.success) throw new ConfigError(fileName, sortProblems(located));
  const config = toConfig(result.data);
  // Limits of the backend that will run; check-config warns about the other one.
  const capture = options.capture ?? config.capture;
  const selectedBy = options.capture !== undefined && options.capture !== config.capture ? ' (selected by --capture)' : '';
  for (const limit of exceededBackendLimits(config.doors)) {
    if (limit.capture === capture) add({ path: ['doors'], message: `${limit.message}${selectedBy}` }, true);
  }
  if (located.length > 0) throw new ConfigError(fileName, located);
  return deepFreeze(config);
}

function toConfig(c: RawConfig): KnockwatchConfig {
  return {
    interface: c.interface,
    firewall: c.firewall,
    capture: c.capture,
    maxSources: c.max_sources,
    doors: c.doors,
    ...(c.users !== undefined ? { users: c.users } : {}),
  };
}

function yamlMessage(code: string, message: string, text: string, pos: [number, number]): string {
  if (code === 'DUPLICATE_KEY') {
    // The error's range covers only the key's first character; take the key up to its colon.
    const key = /^("[^"\n]*"|'[^'\n]*'|[^:\n]*?)\s*:/.exec(text.slice(pos[0]))?.[1] ?? text.slice(pos[0], pos[1]);
    return `duplicate key '${key}'`;
  }
  // The parser recurses per nesting level and reports its own stack overflow as an error.
  if (/call stack/i.test(message)) return 'YAML: nested too deeply (a config needs only a few levels)';
  return `YAML: ${message}`;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  const hint = guess !== undefined ? `did you mean '${guess}'?` : `known keys: ${known.join(', ')}`;
  return `unknown key '${key}' (${hint})`;
}

/** A known key the unknown one is probably a typo or a camelCase spelling of. */
function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const exact = known.find((k) => norm(k) === norm(key));
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = 3; // more than two edits away is not a typo
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * In file order, at most MAX_REPORTED. A broken file cascades: 2,000 unclosed
 * brackets gave 3,820 YAML errors (380 KB of message); the first ones are the
 * ones to fix.
 */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  // Stable sort: problems without a location keep their order, first.
  const sorted = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (sorted.length <= MAX_REPORTED) return sorted;
  const next = sorted[MAX_REPORTED];
  const rest = sorted.length - MAX_REPORTED;
  return [...sorted.slice(0, MAX_REPORTED), { path: '', line: next.line, column: next.column, message: `${rest} more problems from here on are not shown` }];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
