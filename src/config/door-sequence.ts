// The keys of a `sequence` door (knockd's kind): the ordered knock ports, the
// window they must complete in, and an optional gap between two steps.
import type { SequenceDoor } from '../types.js';
import { formatPort } from '../types.js';
import { MAX_GAP_MS, MAX_SEQUENCE_STEPS, MAX_WINDOW_MS } from '../limits.js';
import { defineDoorKind } from './door-kind.js';
import { formatDuration } from './duration.js';
import { duration, portList } from './values.js';

/** The kind's own keys; exported so cross-field checks can parse them one at a time. */
export const sequenceShape = {
  sequence: portList('knock ports', MAX_SEQUENCE_STEPS),
  window: duration('window', MAX_WINDOW_MS),
  gap: duration('gap', MAX_GAP_MS).optional(),
};

export const sequenceKind = defineDoorKind<typeof sequenceShape, SequenceDoor>({
  kind: 'sequence',
  key: 'sequence',
  shape: sequenceShape,
  toDoor: (d, common) => ({
    kind: 'sequence',
    ...common,
    sequence: d.sequence,
    windowMs: d.window,
    ...(d.gap !== undefined ? { gapMs: d.gap } : {}),
  }),
  toJSON: (d) => ({
    sequence: d.sequence.map(formatPort),
    window: formatDuration(d.windowMs),
    ...(d.gapMs !== undefined ? { gap: formatDuration(d.gapMs) } : {}),
  }),
});
