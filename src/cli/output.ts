// Buffered line output for commands that may print millions of lines, and a
// progress bar for terminals. A closed pipe (`| head`) ends output quietly.

export interface LineSink {
  line(text: string): void;
  flush(): void;
  /** True once the reader went away (EPIPE): callers may stop producing. */
  readonly closed: boolean;
}

export function stdoutLines(stream: NodeJS.WriteStream = process.stdout, limit = 64 * 1024, beforeWrite?: () => void): LineSink {
  let parts: string[] = [];
  let size = 0;
  let closed = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') closed = true;
    else throw err;
  });
  const sink: LineSink = {
    line(text) {
      if (closed) return;
      parts.push(text);
      size += text.length + 1;
      if (size >= limit) sink.flush();
    },
    flush() {
      if (parts.length === 0 || closed) return;
      beforeWrite?.();
      stream.write(parts.join('\n') + '\n');
      parts = [];
      size = 0;
    },
    get closed() {
      return closed;
    },
  };
  return sink;
}

/** A one-line progress bar on a TTY, redrawn at most every `intervalMs`. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, intervalMs = 100) {
  const enabled = stream.isTTY === true;
  let last = 0;
  let drawn = false;
  const mb = (n: number) => (n / 1048576).toFixed(1);
  return {
    update(done: number, total: number | undefined): void {
      if (!enabled) return;
      const now = performance.now();
      if (now - last < intervalMs) return;
      last = now;
      drawn = true;
      if (total && total > 0) {
        const frac = Math.min(1, done / total);
        const width = 30;
        const fill = Math.round(frac * width);
        stream.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${mb(done)}/${mb(total)} MB`);
      } else {
        stream.write(`\r${mb(done)} MB read`);
      }
    },
    clear(): void {
      if (!enabled || !drawn) return;
      stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
