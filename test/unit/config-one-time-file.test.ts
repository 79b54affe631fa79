// knockd's one_time_sequences file format: parsing with file:line:column
// errors, and marking a line used without touching the rest of the file.
import { describe, expect, it } from 'vitest';
import { OneTimeFileError, markUsedText, parseOneTimeText } from '../../src/config/one-time-file.js';

const F = '/etc/knockwatch/once.txt';

describe('parseOneTimeText', () => {
  it('knockd syntax: PORT[:proto], commas, spaces; # lines and blanks skipped; first unused first', () => {
    const r = parseOneTimeText(F, '# my sequences\n#1111:tcp,2222:tcp\n\n 1234:tcp, 5678:udp ,9012\r\n3000/udp,4000:TCP\n');
    expect(r.usedOrComment).toBe(2);
    expect(r.entries).toEqual([
      {
        line: 4,
        text: '1234:tcp, 5678:udp ,9012',
        sequence: [
          { port: 1234, protocol: 'tcp' },
          { port: 5678, protocol: 'udp' },
          { port: 9012, protocol: 'tcp' },
        ],
      },
      { line: 5, text: '3000/udp,4000:TCP', sequence: [{ port: 3000, protocol: 'udp' }, { port: 4000, protocol: 'tcp' }] },
    ]);
  });

  it('an empty file or one with only used lines has no entries', () => {
    expect(parseOneTimeText(F, '').entries).toEqual([]);
    expect(parseOneTimeText(F, '#1,3\n#5,7\n').entries).toEqual([]);
  });

  it.each([
    ['1234:tcp,12a4', 2, 10, /invalid port '12a4'/],
    ['1234:sctp', 2, 1, /unknown protocol 'sctp'/],
    ['1234,,5678', 2, 6, /empty step/],
    ['1234,', 2, 6, /empty step/],
    ['1234,1235', 2, undefined, /step 2: 1235\/tcp right after 1234\/tcp is a neighbouring port/],
    ['1234:udp,1234:udp', 2, undefined, /repeats the same port/],
    ['70000', 2, 1, /port 70000 is outside 1-65535/],
    [Array.from({ length: 33 }, (_, i) => 1000 + i * 10).join(','), 2, undefined, /33 steps; at most 32/],
  ])('refuses %j at line %i column %s', (bad, line, column, message) => {
    let err: unknown;
    try {
      parseOneTimeText(F, `1000,2000\n${bad}\n`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OneTimeFileError);
    const e = err as OneTimeFileError;
    expect(e.line).toBe(line);
    expect(e.column).toBe(column);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`${F}:${line}${column === undefined ? '' : `:${column}`}: `)).toBe(true);
  });

  it('refuses a sequence that comes back, used or not (it could be replayed)', () => {
    expect(() => parseOneTimeText(F, '1000,2000\n3000,4000\n1000:tcp, 2000:tcp\n')).toThrow(`${F}:3: same sequence as line 1`);
    expect(() => parseOneTimeText(F, '#1000,2000\n3000,4000\n1000,2000\n')).toThrow(`${F}:3: same sequence as line 1`);
    // A comment that merely starts with a digit is no sequence.
    expect(parseOneTimeText(F, '# 2 sequences below\n1000,2000\n').entries).toHaveLength(1);
  });

  it('refuses binary', () => {
    expect(() => parseOneTimeText(F, '1000\0')).toThrow(`${F}: contains a NUL byte`);
  });
});

describe('markUsedText', () => {
  it("puts '#' in front of that line only, keeping every other byte", () => {
    const text = '# header\r\n1000,2000\r\n3000,4000\n5000,6000';
    const r = parseOneTimeText(F, text);
    const once = markUsedText(F, text, r.entries[0]);
    expect(once).toBe('# header\r\n#1000,2000\r\n3000,4000\n5000,6000');
    const r2 = parseOneTimeText(F, once);
    expect(r2.entries.map((e) => e.line)).toEqual([3, 4]);
    expect(markUsedText(F, once, r2.entries[1])).toBe('# header\r\n#1000,2000\r\n3000,4000\n#5000,6000');
  });

  it('refuses when the line no longer holds the entry (edited since read)', () => {
    const r = parseOneTimeText(F, '1000,2000\n');
    expect(() => markUsedText(F, '#1000,2000\n', r.entries[0])).toThrow(`${F}:1: no longer holds the sequence`);
    expect(() => markUsedText(F, '', r.entries[0])).toThrow('no longer holds');
  });
});
