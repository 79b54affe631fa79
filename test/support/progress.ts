// A line at least every 30 s from long test files, so a run on a busy machine
// never looks hung: `[progress] <file>: <what>` when each test ends, and a
// "still in" line every 20 s while one test (or a beforeAll) runs longer.
// Written straight to stderr, which the worker passes through as it comes
// (console output of a test is only shown once vitest reports that test).
import { basename } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';

const EVERY_MS = 20_000;

function say(file: string, what: string): void {
  process.stderr.write(`[progress] ${file}: ${what}\n`);
}

/** Call once at the top level of a test file (pass import.meta.url). */
export function reportProgress(fileUrl: string): void {
  const file = basename(new URL(fileUrl).pathname);
  const started = Date.now();
  let current = 'setting up';
  let since = Date.now();
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;

  beforeAll(() => {
    say(file, 'started');
    timer = setInterval(() => say(file, `still in "${current}" after ${secs(Date.now() - since)} (${done} tests done, ${secs(Date.now() - started)} in file)`), EVERY_MS);
    timer.unref();
  });
  beforeEach(() => {
    // The test's own name: the describe path makes the line too long to read.
    const name = expect.getState().currentTestName?.split(' > ').pop() ?? 'a test';
    current = name.length > 90 ? `${name.slice(0, 87)}...` : name;
    since = Date.now();
  });
  afterEach(() => {
    done++;
    say(file, `done "${current}" in ${secs(Date.now() - since)} (${done} tests, ${secs(Date.now() - started)} in file)`);
    current = 'between tests';
    since = Date.now();
  });
  afterAll(() => {
    clearInterval(timer);
    say(file, `finished: ${done} tests in ${secs(Date.now() - started)}`);
  });
}
