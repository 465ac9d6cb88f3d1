/**
 * Access log sinks, one per path, shared by every listener of the process. A write
 * appends to an in-memory buffer; one flush per tick hands the whole batch to an
 * async fs.WriteStream (or stdout/stderr). When the disk cannot keep up and the
 * stream holds more than MAX_PENDING bytes, lines are dropped and counted rather
 * than letting memory grow or requests wait.
 *
 * SIGUSR1 reopens file sinks (logrotate's `postrotate kill -USR1`), as Envoy does.
 * Installing that handler turns off Node's "SIGUSR1 starts the inspector"; it is
 * installed only once a file sink exists.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

const MAX_PENDING = 8 * 1024 * 1024;

export interface LogSink {
  /** false: the line was dropped (the sink is too far behind, or its file failed). */
  write(line: string): boolean;
  flush(): Promise<void>;
  reopen(): void;
}

class StreamSink implements LogSink {
  private buf: string[] = [];
  private scheduled = false;
  private stream: WriteStream | NodeJS.WriteStream;
  /** The file could not be opened or written; lines are dropped until a reopen. */
  private broken = false;

  constructor(private readonly path: string) {
    this.stream = this.open();
  }

  private open(): WriteStream | NodeJS.WriteStream {
    if (this.path === '/dev/stdout') return process.stdout;
    if (this.path === '/dev/stderr') return process.stderr;
    const s = createWriteStream(this.path, { flags: 'a' });
    // A log that cannot be written must not take the proxy down; its lines are counted as dropped.
    s.on('error', () => { if (this.stream === s) this.broken = true; });
    return s;
  }

  write(line: string): boolean {
    if (this.broken || this.stream.writableLength > MAX_PENDING) return false;
    this.buf.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drainBuffer());
    }
    return true;
  }

  private drainBuffer(): void {
    this.scheduled = false;
    if (this.buf.length === 0 || this.broken) { this.buf = []; return; }
    const chunk = this.buf.join('');
    this.buf = [];
    this.stream.write(chunk);
  }

  flush(): Promise<void> {
    this.drainBuffer();
    const s = this.stream;
    if (this.broken || s.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => s.write('', () => resolve()));
  }

  reopen(): void {
    if (this.path === '/dev/stdout' || this.path === '/dev/stderr') return;
    this.drainBuffer();
    const old = this.stream as WriteStream;
    this.broken = false;
    this.stream = this.open();
    old.end();
  }
}

const sinks = new Map<string, LogSink>();
let sigusr1 = false;

export function sinkFor(path: string): LogSink {
  let s = sinks.get(path);
  if (s === undefined) {
    s = new StreamSink(path);
    sinks.set(path, s);
    if (!sigusr1 && path !== '/dev/stdout' && path !== '/dev/stderr') {
      sigusr1 = true;
      // A worker installs it at start (workers/worker-main.ts): once is enough.
      if (!process.listeners('SIGUSR1').includes(reopenAccessLogs)) process.on('SIGUSR1', reopenAccessLogs);
    }
  }
  return s;
}

export function reopenAccessLogs(): void {
  for (const s of sinks.values()) s.reopen();
}

/** Writes out what is buffered (proxy close, tests). */
export async function flushAccessLogs(): Promise<void> {
  await Promise.all([...sinks.values()].map((s) => s.flush()));
}
