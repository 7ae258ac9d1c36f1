/**
 * Payment gateway and mint service over HTTP. Every request carries an `Idempotency-Key` derived
 * from the operation's business key (a payment, a mint, a refund), so attempts, redrives and jobs
 * that repeat the operation never repeat a side effect the provider already made. 2xx: done, the
 * answer is the result; 4xx: a permanent failure (no retry), except 408, 409 (the key is in use by
 * a request still running), 425 and 429; 5xx, a timeout or a network error: retryable.
 *
 * When an earlier attempt may already have sent the operation (its answer is unknown), the provider
 * is first asked whether it happened (`GET /v1/operations/{idempotency key}`), so a retry later than
 * the provider's idempotency window cannot repeat it either.
 *
 * The wire protocol (JSON):
 *   POST {PAYMENT_GATEWAY_URL}/v1/charges  {amount, currency, customer, payment_method, metadata{payment_id, order_id}}
 *   POST {PAYMENT_GATEWAY_URL}/v1/refunds  {charge, payment, amount, currency, reason?}   (charge: the charge's `id`)
 *   POST {MINT_SERVICE_URL}/v1/mints       {ticket_id, order_id, recipient_wallet, metadata_uri}
 *   GET  {base}/v1/operations/{key}        200 {status, response} | 404
 */
import { PermanentJobError, RetryableJobError } from "../engine/processor.js";
import type { ChargeRequest, MintProvider, MintRequest, MoneyCall, PaymentProvider, ProviderResult, RefundRequest } from "./money-providers.js";

/** Statuses of 4xx that are worth retrying. */
const RETRYABLE_4XX = new Set([408, 409, 425, 429]);
/** Largest provider answer kept. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface HttpProviderOptions {
  baseUrl: string;
  timeoutMs: number;
  /** Sent as `Authorization: Bearer`, when set. */
  apiKey?: string;
}

async function readBody(res: Response): Promise<unknown> {
  const text = (await res.text()).slice(0, MAX_RESPONSE_BYTES);
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { body: text };
  }
}

function errorMessageOf(body: unknown): string {
  const b = body as { error?: { message?: unknown } | string; message?: unknown } | undefined;
  if (b && typeof b.error === "object" && typeof b.error.message === "string") return b.error.message;
  if (b && typeof b.error === "string") return b.error;
  if (b && typeof b.message === "string") return b.message;
  return "";
}

/** A JSON-over-HTTP client for one provider base URL. */
function client(options: HttpProviderOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const headers = (key?: string): Record<string, string> => ({
    "content-type": "application/json",
    accept: "application/json",
    ...(key ? { "idempotency-key": key } : {}),
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
  });
  const send = async (method: string, path: string, key: string, body?: unknown): Promise<Response> => {
    try {
      return await fetch(`${base}${path}`, {
        method,
        headers: headers(method === "POST" ? key : undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (err) {
      const timedOut = (err as Error).name === "TimeoutError";
      throw new RetryableJobError(
        timedOut ? `provider did not answer within ${options.timeoutMs} ms` : `provider unreachable: ${(err as Error).message}`,
        timedOut ? "PROVIDER_TIMEOUT" : "PROVIDER_UNREACHABLE",
      );
    }
  };
  return {
    /** Performs an operation once per idempotency key. */
    async operate(path: string, body: unknown, call: MoneyCall): Promise<ProviderResult> {
      for (const earlier of call.lookupKeys) {
        const previous = await this.lookup(earlier);
        if (previous) return previous;
      }
      call.signal.throwIfAborted(); // last point where a cancel stops the operation
      call.sending();
      const res = await send("POST", path, call.idempotencyKey, body);
      const answer = await readBody(res);
      if (res.ok) return answer && typeof answer === "object" && !Array.isArray(answer) ? (answer as ProviderResult) : { response: answer };
      const detail = errorMessageOf(answer);
      const message = `provider answered ${res.status}${detail ? `: ${detail}` : ""}`;
      if (res.status >= 500 || RETRYABLE_4XX.has(res.status)) throw new RetryableJobError(message, `PROVIDER_${res.status}`);
      throw new PermanentJobError(message, "PROVIDER_REJECTED", { status: res.status });
    },
    /** The recorded outcome of an earlier operation with this key, if it succeeded. */
    async lookup(key: string): Promise<ProviderResult | undefined> {
      const res = await send("GET", `/v1/operations/${encodeURIComponent(key)}`, key);
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      const answer = (await readBody(res)) as { status?: number; response?: unknown };
      if (!res.ok) throw new RetryableJobError(`provider lookup answered ${res.status}`, `PROVIDER_${res.status}`);
      if (typeof answer.status === "number" && answer.status >= 200 && answer.status < 300 && answer.response && typeof answer.response === "object") {
        return { ...(answer.response as ProviderResult), replayed: true };
      }
      return undefined;
    },
  };
}

/** A payment gateway over HTTP. */
export function httpPaymentProvider(options: HttpProviderOptions): PaymentProvider {
  const http = client(options);
  return {
    name: "http",
    chargeReference: (result) => (typeof result.id === "string" ? result.id : undefined),
    charge: (req: ChargeRequest, call: MoneyCall) =>
      http.operate(
        "/v1/charges",
        {
          amount: req.amount,
          currency: req.currency,
          customer: req.customerId,
          payment_method: req.paymentMethod,
          metadata: { payment_id: req.paymentId, order_id: req.orderId },
        },
        call,
      ),
    refund: (req: RefundRequest, call: MoneyCall) =>
      http.operate(
        "/v1/refunds",
        {
          charge: req.charge,
          payment: req.paymentId,
          amount: req.amount,
          currency: req.currency,
          ...(req.reason ? { reason: req.reason } : {}),
        },
        call,
      ),
  };
}

/** A mint service over HTTP. */
export function httpMintProvider(options: HttpProviderOptions): MintProvider {
  const http = client(options);
  return {
    name: "http",
    mint: (req: MintRequest, call: MoneyCall) =>
      http.operate(
        "/v1/mints",
        {
          ticket_id: req.ticketId,
          order_id: req.orderId,
          recipient_wallet: req.recipientWallet,
          metadata_uri: req.metadataUri,
        },
        call,
      ),
  };
}
