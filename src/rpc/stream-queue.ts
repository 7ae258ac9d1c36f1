/**
 * A stream's outbox: items wait here until the client takes them, bounded in bytes. A consumer that
 * falls so far behind that the bound is reached is cut off (RESOURCE_EXHAUSTED) rather than letting
 * the server's memory grow; when it is not reading at all (the transport is blocked), its HTTP/2
 * stream is reset with ENHANCE_YOUR_CALM, which clients report as RESOURCE_EXHAUSTED too.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export interface StreamQueueOptions {
  maxBytes: number;
  signal: AbortSignal;
  /** Called once when the bound is reached (to reset the transport stream if the consumer is stuck). */
  onOverflow?: () => void;
}

/** A bounded queue read as an async iterator. */
export class StreamQueue<T> {
  #items: { item: T; bytes: number }[] = [];
  #bytes = 0;
  #failure: Error | undefined;
  #ended = false;
  #wake: (() => void) | undefined;
  readonly #options: StreamQueueOptions;

  constructor(options: StreamQueueOptions) {
    this.#options = options;
    options.signal.addEventListener("abort", () => this.#wake?.(), { once: true });
  }

  /** Adds an item of about `bytes`; over the bound, fails the stream instead. */
  push(item: T, bytes: number): void {
    if (this.#failure || this.#ended) return;
    if (this.#bytes + bytes > this.#options.maxBytes) {
      this.fail(new ConnectError(`the client is not reading fast enough: more than ${this.#options.maxBytes} bytes are waiting`, Code.ResourceExhausted));
      this.#options.onOverflow?.();
      return;
    }
    this.#items.push({ item, bytes });
    this.#bytes += bytes;
    this.#wake?.();
  }

  /** Ends the stream with an error (after nothing else). */
  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#items = [];
    this.#bytes = 0;
    this.#wake?.();
  }

  /** Ends the stream normally once the queued items are taken. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const signal = this.#options.signal;
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new ConnectError("cancelled", Code.Canceled);
      if (this.#failure) throw this.#failure;
      const next = this.#items.shift();
      if (next) {
        this.#bytes -= next.bytes;
        yield next.item;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
