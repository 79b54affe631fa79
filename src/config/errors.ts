// Configuration errors. Every problem found in a config file is collected and
// reported together, each with the path of the offending value
// (e.g. `doors[1].sequence[2]`) and, when known, its line and column.

export interface ConfigProblem {
  /** Path of the value, `doors[1].sequence[2]`; '' for the whole file. */
  readonly path: string;
  /** 1-based line in the file, when the value has a location. */
  readonly line?: number;
  /** 1-based column in the file, when the value has a location. */
  readonly column?: number;
  readonly message: string;
}

/** `file:line:col: path: message`, leaving out the parts that are unknown. */
export function formatProblem(fileName: string, p: ConfigProblem): string {
  let where = fileName;
  if (p.line !== undefined) {
    where += `:${p.line}`;
    if (p.column !== undefined) where += `:${p.column}`;
  }
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly fileName: string;
  readonly problems: readonly ConfigProblem[];

  constructor(fileName: string, problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const lines = problems.map((p) => formatProblem(fileName, p));
    super(`invalid configuration ${fileName} (${count}):\n${lines.join('\n')}`);
    this.fileName = fileName;
    this.problems = problems;
  }
}

/** A single-value validation failure; the schema turns it into a ConfigProblem. */
export class ValueError extends Error {
  override readonly name = 'ValueError';
}

/** Path segments as zod and yaml give them, rendered `doors[1].sequence[2]`. */
export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Short description of a parsed YAML value, for "expected X, got Y" messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `'${truncate(v)}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return 'binary data (!!binary)';
  if (v instanceof Map) return 'an ordered mapping (!!omap)';
  if (v instanceof Set) return 'a set (!!set)';
  if (v instanceof Date) return 'a timestamp';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
