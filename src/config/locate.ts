// Map a value path (`doors[1].sequence[2]`) back to its place in the YAML
// source, so every problem can name a line and column.
import { isAlias, isMap, isScalar, isSeq, visit, type Alias, type Document, type LineCounter, type Node } from 'yaml';
import type { PathSegment } from './errors.js';

export interface Location {
  readonly line: number;
  readonly column: number;
}

/**
 * Location of the value at `path`, or of the key itself when `atKey` is set
 * (for unknown keys). When the path does not exist (a missing key), the
 * nearest enclosing node that does exist is used.
 */
export function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PathSegment[],
  atKey = false,
): Location | undefined {
  let node: unknown = doc.contents;
  let found: Node | undefined = isNode(node) ? node : undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (pair === undefined) break;
      if (atKey && i === path.length - 1 && isNode(pair.key)) {
        found = pair.key;
        break;
      }
      // `key:` with no value has an empty null node just past the colon: the key reads better.
      next = isEmptyScalar(pair.value) ? pair.key : pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (!isNode(next)) break;
    node = next;
    found = next;
  }
  return found === undefined ? undefined : nodeLocation(found, lineCounter);
}

export function nodeLocation(node: Node, lineCounter: LineCounter): Location | undefined {
  const offset = node.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/**
 * Where resolving the document (toJS) failed, for its error: the first alias
 * whose anchor is not defined before it; for a bad merge (`<<: 5`) the first
 * merge key; for too many aliases the first alias; else the document itself.
 */
export function resolveFailureNode(doc: Document, message: string): Node | undefined {
  let unresolved: Alias | undefined;
  let firstAlias: Alias | undefined;
  let firstMerge: Node | undefined;
  visit(doc, {
    Alias(_key, node) {
      firstAlias ??= node;
      if (unresolved === undefined && node.resolve(doc) === undefined) unresolved = node;
      return undefined;
    },
    Pair(_key, pair) {
      if (firstMerge === undefined && isScalar(pair.key) && pair.key.value === '<<') firstMerge = pair.key;
      return undefined;
    },
  });
  if (unresolved) return unresolved;
  if (/merge/i.test(message) && firstMerge) return firstMerge;
  return firstAlias ?? (isNode(doc.contents) ? doc.contents : undefined);
}

/** A null written as nothing at all (`key:` or a bare `---`), not as `null` or `~`. */
export function isEmptyScalar(v: unknown): boolean {
  return v === null || (isScalar(v) && v.value === null && v.range !== undefined && v.range?.[0] === v.range?.[1]);
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && 'range' in v;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}
