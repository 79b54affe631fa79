// How the commands report a config file they cannot use: "not found" for a
// missing file (rather than the OS's `ENOENT: no such file or directory,
// lstat ...`), and the JSON shape of `check-config --json`.
import { ConfigError, type ConfigProblem } from '../config/index.js';

const MISSING = /\bENOENT\b/;

/** The same error, with a missing file said in plain words. */
export function explainConfigError(err: ConfigError): ConfigError {
  if (!err.problems.some((p) => p.path === '' && MISSING.test(p.message))) return err;
  return new ConfigError(
    err.fileName,
    err.problems.map((p) => (p.path === '' && MISSING.test(p.message) ? { ...p, message: 'config file not found' } : p)),
  );
}

export interface ConfigProblemJSON {
  readonly file: string;
  readonly line: number | null;
  readonly column: number | null;
  /** Path of the value (`doors[1].sequence[2]`); null for the file as a whole. */
  readonly field: string | null;
  readonly message: string;
}

/** `check-config --json` on a bad file: one object naming every problem. */
export function configErrorToJSON(err: ConfigError): { valid: false; file: string; problems: ConfigProblemJSON[] } {
  return {
    valid: false,
    file: err.fileName,
    problems: err.problems.map((p: ConfigProblem) => ({
      file: err.fileName,
      line: p.line ?? null,
      column: p.column ?? null,
      field: p.path === '' ? null : p.path,
      message: p.message,
    })),
  };
}
