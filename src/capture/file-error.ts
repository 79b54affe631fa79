// The one error type of capture-file reading: it names the file and the byte
// offset where the problem was found, so a broken capture can be inspected
// with a hex dump at exactly that place.

export class CaptureFileError extends Error {
  /** The file as named by the caller ('<stdin>' for standard input). */
  readonly file: string;
  /** Byte offset in the file of the header, record or block at fault; -1 when the file could not be read at all. */
  readonly offset: number;

  constructor(file: string, offset: number, problem: string, options?: { cause?: unknown }) {
    super(offset < 0 ? `${file}: ${problem}` : `${file}: byte ${offset}: ${problem}`, options);
    this.name = 'CaptureFileError';
    this.file = file;
    this.offset = offset;
  }
}

