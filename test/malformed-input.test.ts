/**
 * Property: no malformed AddJob request is accepted. 1,000 generated requests, each a valid request
 * with one thing broken (a missing or unknown field, a value of the wrong kind, an unknown type, an
 * option out of bounds), are all INVALID_ARGUMENT with a field violation, and the job table does not
 * change.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { analytics, email, nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService(db);
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

type Kind = "string" | "number" | "recipients" | "optional-string";
interface TypeSpec {
  type: string;
  base: () => Record<string, unknown>;
  fields: Record<string, Kind>;
  required: string[];
}

const specs: TypeSpec[] = [
  {
    type: "payment:process",
    base: payment,
    fields: { paymentId: "string", orderId: "string", customerId: "string", amount: "number", currency: "string", paymentMethod: "string" },
    required: ["paymentId", "orderId", "customerId", "amount", "currency", "paymentMethod"],
  },
  {
    type: "refund:process",
    base: refund,
    fields: { paymentId: "string", amount: "number", currency: "string", reason: "optional-string" },
    required: ["paymentId", "amount", "currency"],
  },
  {
    type: "nft:mint",
    base: nftMint,
    fields: { ticketId: "string", orderId: "string", recipientWallet: "string", metadataUri: "string" },
    required: ["ticketId", "orderId", "recipientWallet", "metadataUri"],
  },
  { type: "email:send", base: email, fields: { to: "recipients", subject: "string", text: "optional-string" }, required: ["to", "subject"] },
  { type: "analytics:aggregate", base: analytics, fields: { from: "optional-string", to: "optional-string", bucket: "optional-string" }, required: [] },
];

/** JSON values that are not of `kind`. */
const notOfKind = (kind: Kind): fc.Arbitrary<unknown> => {
  const others: fc.Arbitrary<unknown>[] = [fc.boolean(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 })];
  if (kind !== "number") others.push(fc.integer());
  if (kind === "number") others.push(fc.string(), fc.double({ noNaN: true, min: 0.001, max: 0.999 }));
  if (kind !== "recipients") others.push(fc.array(fc.integer(), { maxLength: 3 }));
  return fc.oneof(...others);
};

const knownTypes = new Set(specs.map((s) => s.type));

type Mutation = (spec: TypeSpec) => fc.Arbitrary<{ type: string; payload?: Record<string, unknown>; options?: Record<string, unknown> }>;

const mutations: Mutation[] = [
  // A required field missing.
  (spec) =>
    spec.required.length === 0
      ? fc.constant({ type: spec.type, payload: { ...spec.base(), unexpected: 1 } })
      : fc.constantFrom(...spec.required).map((f) => {
          const payload = spec.base();
          delete payload[f];
          return { type: spec.type, payload };
        }),
  // A key the schema does not know.
  (spec) =>
    fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((k) => !(k in spec.fields) && k !== "__proto__")
      .map((k) => ({ type: spec.type, payload: { ...spec.base(), [k]: "x" } })),
  // A value of the wrong kind.
  (spec) =>
    fc
      .constantFrom(...Object.keys(spec.fields))
      .chain((f) => notOfKind(spec.fields[f]!).map((v) => ({ type: spec.type, payload: { ...spec.base(), [f]: v } }))),
  // An unknown job type.
  (spec) =>
    fc
      .string({ maxLength: 30 })
      .filter((t) => !knownTypes.has(t))
      .map((t) => ({ type: t, payload: spec.base() })),
  // No payload.
  (spec) => fc.constant({ type: spec.type }),
  // An option out of bounds.
  (spec) =>
    fc
      .oneof(
        fc.integer({ min: 101, max: 1_000_000 }).map((p) => ({ priority: p })),
        fc.integer({ min: -1_000_000, max: -101 }).map((p) => ({ priority: p })),
        fc.integer({ min: 21, max: 1_000_000 }).map((n) => ({ retryLimit: n })),
        fc.integer({ min: -1000, max: -1 }).map((n) => ({ retryLimit: n })),
        fc.constant({ expireIn: { seconds: 0n } }),
        fc.bigInt({ min: 86_401n, max: 10_000_000n }).map((s) => ({ retryDelay: { seconds: s } })),
        fc.string({ minLength: 1, maxLength: 20 }).map((k) => ({ idempotencyKey: `${k}\u0007` })),
        fc.constant({ idempotencyKey: "" }),
      )
      .map((options) => ({ type: spec.type, payload: spec.base(), options })),
];

describe("malformed AddJob requests", () => {
  it("are all INVALID_ARGUMENT and change nothing (1,000 generated)", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const count = async () => (await db.query(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job`)).rows[0]!.n as number;
    const before = await count();
    const requests = fc.constantFrom(...specs).chain((spec) => fc.constantFrom(...mutations).chain((m) => m(spec)));
    await fc.assert(
      fc.asyncProperty(requests, async (request) => {
        const err = await failure(jobs.addJob(request as never));
        expect(
          err.code,
          JSON.stringify(request, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
        ).toBe(Code.InvalidArgument);
        expect(violations(err).length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
    expect(await count()).toBe(before);
  });
});
