// Capture files as an Observable of frames: classic pcap (µs and ns, either
// byte order) and pcapng, from a path, from stdin ('-'), from any readable
// stream or from bytes in memory. Input is read in large chunks and frames are
// emitted synchronously inside each chunk: no promise or closure per packet.
// Frames are views into those chunks (1 MiB by default): whoever keeps bytes
// for long should copy them, or a whole chunk stays in memory.
import { close, fstat, open, read } from 'node:fs';
import type { Readable } from 'node:stream';
import { Observable, type Subscriber } from 'rxjs';
import type { Frame } from '../types.js';
import { type CaptureFormat, type ChunkReader, DEFAULT_CHUNK_BYTES, createChunkReader } from './file-chunks.js';
import { CaptureFileError } from './file-error.js';

export { CaptureFileError } from './file-error.js';
export { END_PACKET_TIME_MS, FIRST_PACKET_TIME_MS, MAX_BLOCK_BYTES, MAX_INTERFACES, MAX_PACKET_BYTES } from './file-limits.js';
export type { CaptureFormat } from './file-chunks.js';

/** Filled in while reading; final once the Observable completes or errors. */
export interface CaptureFileStats {
  /** Frames emitted. */
  frames: number;
  /** Bytes read from the file. */
  bytes: number;
  /** Detected format, once the first bytes have been seen. */
  format?: CaptureFormat;
}

export interface ReadCaptureOptions {
  /** Updated after every chunk and at the end. */
  stats?: CaptureFileStats;
  /** Called after every chunk read; totalBytes is undefined when the size is unknown (stdin, pipes). */
  onProgress?: (bytesRead: number, totalBytes: number | undefined) => void;
  /** Read size in bytes (default 1 MiB). Tests use tiny values to split records across reads. */
  chunkBytes?: number;
}

export const STDIN_NAME = '<stdin>';

/**
 * Streams the frames of a capture file; `path` '-' reads standard input.
 * Errors with a CaptureFileError naming the file and byte offset. Unsubscribing
 * stops reading and closes the file.
 */
export function readCaptureFile(path: string, options: ReadCaptureOptions = {}): Observable<Frame> {
  if (path === '-') return readCaptureStream(process.stdin, STDIN_NAME, options);
  return new Observable<Frame>((subscriber) => {
    const reader = createChunkReader(path, subscriber, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    let fd = -1;
    let reading = false;
    let stopped = false;
    let total: number | undefined;

    const release = (): void => {
      stopped = true;
      // Never close while a read is in flight: the fd number could be reused
      // by the time the read runs. The read's callback closes it instead.
      if (fd >= 0 && !reading) {
        close(fd, () => {});
        fd = -1;
      }
    };
    const fail = (err: unknown): void => {
      release();
      subscriber.error(err);
    };

    const readNext = (): void => {
      const { buf, at } = reader.space();
      reading = true;
      read(fd, buf, at, buf.length - at, null, (err, n) => {
        reading = false;
        if (stopped) return release();
        if (err) return fail(new CaptureFileError(path, reader.bytes, `read failed: ${err.message}`, { cause: err }));
        try {
          if (n === 0) {
            reader.finish();
            report(reader, options, total);
            release();
            subscriber.complete();
            return;
          }
          reader.commit(n);
          report(reader, options, total);
        } catch (e) {
          report(reader, options, total);
          return fail(e);
        }
        if (subscriber.closed) return release();
        readNext();
      });
    };

    open(path, 'r', (err, opened) => {
      if (stopped) {
        if (!err) close(opened, () => {});
        return;
      }
      if (err) return fail(new CaptureFileError(path, -1, `cannot open: ${err.message}`, { cause: err }));
      fd = opened;
      fstat(fd, (statErr, st) => {
        if (stopped) return release();
        // A pipe or FIFO has no meaningful size: progress then has no total.
        if (!statErr && st.isFile()) total = st.size;
        readNext();
      });
    });

    return release;
  });
}

/**
 * Frames from a readable byte stream (stdin, a socket, a child's stdout).
 * The stream is paused, not destroyed, on unsubscribe: its owner decides.
 */
export function readCaptureStream(stream: Readable | NodeJS.ReadableStream, name: string, options: ReadCaptureOptions = {}): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    const reader = createChunkReader(name, subscriber, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    let done = false;

    const detach = (): void => {
      if (done) return;
      done = true;
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
      stream.pause();
    };
    const fail = (err: unknown): void => {
      detach();
      subscriber.error(err);
    };
    function onData(chunk: unknown): void {
      if (done) return;
      if (!(chunk instanceof Uint8Array)) {
        return fail(new CaptureFileError(name, reader.bytes, 'stream delivered text, not bytes (is an encoding set on it?)'));
      }
      try {
        reader.write(chunk);
        report(reader, options, undefined);
      } catch (e) {
        report(reader, options, undefined);
        return fail(e);
      }
      if (subscriber.closed) detach();
    }
    function onEnd(): void {
      if (done) return;
      try {
        reader.finish();
      } catch (e) {
        return fail(e);
      } finally {
        report(reader, options, undefined);
      }
      detach();
      subscriber.complete();
    }
    function onError(err: Error): void {
      if (done) return;
      fail(new CaptureFileError(name, reader.bytes, `read failed: ${err.message}`, { cause: err }));
    }

    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    // A stream that already ended will not say so again.
    if ((stream as Readable).readableEnded) onEnd();
    else stream.resume();
    return detach;
  });
}

/**
 * Frames from a capture file already in memory, emitted synchronously on
 * subscribe. The bytes are copied, so the caller may reuse its buffer.
 */
export function readCaptureBytes(bytes: Uint8Array, name: string, options: ReadCaptureOptions = {}): Observable<Frame> {
  return new Observable<Frame>((subscriber: Subscriber<Frame>) => {
    const reader = createChunkReader(name, subscriber, Math.max(options.chunkBytes ?? bytes.length, 1));
    try {
      reader.write(bytes);
      reader.finish();
    } catch (e) {
      report(reader, options, bytes.length);
      subscriber.error(e);
      return;
    }
    report(reader, options, bytes.length);
    subscriber.complete();
  });
}

function report(reader: ChunkReader, options: ReadCaptureOptions, total: number | undefined): void {
  const { stats, onProgress } = options;
  if (stats) {
    stats.frames = reader.frames;
    stats.bytes = reader.bytes;
    if (reader.format) stats.format = reader.format;
  }
  onProgress?.(reader.bytes, total);
}
