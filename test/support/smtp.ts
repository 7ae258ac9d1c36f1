/**
 * A real SMTP server for tests (the `smtp-server` package), recording what it receives and able to
 * reject or defer on demand.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface Received {
  from: string;
  to: string[];
  raw: string;
}

export interface TestSmtp {
  readonly port: number;
  readonly url: string;
  readonly received: Received[];
  /** Answers every RCPT TO with this reply (e.g. 550), or accepts again with undefined. */
  rejectRecipients(code?: number): void;
  /** Answers the next `n` messages' data with 451 (try again later). */
  deferNext(n: number): void;
  close(): Promise<void>;
}

/** Starts an SMTP server on a loopback port (`port` 0: any free one). */
export async function startSmtp(port = 0): Promise<TestSmtp> {
  const received: Received[] = [];
  let rejectCode: number | undefined;
  let defer = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (rejectCode) {
        const err = Object.assign(new Error(`${address.address}: mailbox unavailable`), { responseCode: rejectCode });
        return callback(err);
      }
      callback();
    },
    onData(stream, session, callback) {
      let raw = "";
      stream.on("data", (c: Buffer) => (raw += c.toString()));
      stream.on("end", () => {
        if (defer > 0) {
          defer--;
          return callback(Object.assign(new Error("try again later"), { responseCode: 451 }));
        }
        received.push({
          from: session.envelope.mailFrom ? (session.envelope.mailFrom as { address: string }).address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  const actual = (server.server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `smtp://127.0.0.1:${actual}`,
    received,
    rejectRecipients: (code) => (rejectCode = code),
    deferNext: (n) => (defer = n),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
