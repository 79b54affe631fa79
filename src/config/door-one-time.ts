// The keys of a `one_time` door (knockd's one_time_sequences): a file of
// sequences, one per line; the first unused line is the valid sequence and
// each line opens once (config/one-time-file.ts has the format).
//
//   - name: once
//     one_time: /etc/knockwatch/once.txt
//     window: 10s
//     open: [2222]
//     duration: 1m
//
// The file is read once the config has parsed (config/door-files.ts), and
// again on every reload (SIGHUP).
import type { OneTimeDoor } from '../types.js';
import { MAX_GAP_MS, MAX_WINDOW_MS } from '../limits.js';
import { defineDoorKind } from './door-kind.js';
import { formatDuration } from './duration.js';
import { ValueError, describeValue } from './errors.js';
import { duration, value } from './values.js';

const oneTimeFile = value((v): string => {
  if (typeof v !== 'string' || v === '') throw new ValueError(`expected the path of a file of one-time sequences, got ${describeValue(v)}`);
  if (v.includes('\0')) throw new ValueError('the path contains a NUL character');
  return v;
});

export const oneTimeShape = {
  one_time: oneTimeFile,
  window: duration('window', MAX_WINDOW_MS),
  gap: duration('gap', MAX_GAP_MS).optional(),
};

export const oneTimeKind = defineDoorKind<typeof oneTimeShape, OneTimeDoor>({
  kind: 'one_time',
  key: 'one_time',
  shape: oneTimeShape,
  toDoor: (d, common) => ({
    kind: 'one_time',
    ...common,
    file: d.one_time,
    windowMs: d.window,
    ...(d.gap !== undefined ? { gapMs: d.gap } : {}),
  }),
  toJSON: (d) => ({
    one_time: d.file,
    window: formatDuration(d.windowMs),
    ...(d.gapMs !== undefined ? { gap: formatDuration(d.gapMs) } : {}),
  }),
});
