/**
 * A light gRPC load generator: unary calls over plain node:http2 sessions (one per client), the
 * request framed and encoded with the generated schema, the answer's grpc-status checked. On a
 * 2-core machine a full Connect client would spend as much CPU as the server under test; this one
 * spends a fraction, as a load generator should (h2load and ghz do the same).
 */
import http2 from "node:http2";
import { create, type DescMessage, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";

/** One client: an HTTP/2 connection making one call at a time. */
export class GrpcLoadClient {
  readonly #session: http2.ClientHttp2Session;
  constructor(
    baseUrl: string,
    readonly token: string,
  ) {
    this.#session = http2.connect(baseUrl);
    this.#session.on("error", () => {});
  }

  call<I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, message: MessageInitShape<I>): Promise<MessageShape<O>> {
    const body = toBinary(input, create(input, message));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    return new Promise((resolve, reject) => {
      const stream = this.#session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc+proto",
        te: "trailers",
        authorization: `Bearer ${this.token}`,
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = "";
      stream.on("response", (h) => {
        if (h["grpc-status"] !== undefined) [status, message] = [String(h["grpc-status"]), String(h["grpc-message"] ?? "")];
      });
      stream.on("trailers", (t) => ([status, message] = [String(t["grpc-status"]), String(t["grpc-message"] ?? "")]));
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("error", reject);
      stream.on("end", () => {
        if (status !== "0") return reject(new Error(`grpc-status ${status}: ${decodeURIComponent(message)}`));
        const all = Buffer.concat(chunks);
        resolve(fromBinary(output, all.subarray(5, 5 + all.readUInt32BE(1))));
      });
      stream.end(frame);
    });
  }

  close(): void {
    this.#session.close();
  }
}
