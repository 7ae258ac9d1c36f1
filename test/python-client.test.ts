/**
 * The Python client (clients/python) against a live server: Debian's python3-grpcio runs
 * clients/python/tests/smoke.py, which prints one JSON line per step, and the worker example, which
 * registers a job type and runs its jobs; and its committed generated code is what
 * `buf generate --template buf.gen.python.yaml` produces.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "./support/database.js";
import { skipWithout } from "./support/external-tools.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const python = "/usr/bin/python3";
const generated = "clients/python/queue_service_client/_gen";

const db = testDatabase();
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

type Step = Record<string, unknown> & { step: string };

/** Runs the smoke script (asynchronously: the server shares this event loop) and parses its lines. */
async function smoke(token: string): Promise<Map<string, Step>> {
  const { stdout } = await run(python, ["clients/python/tests/smoke.py"], {
    cwd: root,
    timeout: 90_000,
    env: { PATH: process.env.PATH ?? "", QS_TARGET: `127.0.0.1:${svc.service.port}`, QS_TOKEN: token, PYTHONDONTWRITEBYTECODE: "1" },
  });
  const steps = stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Step);
  return new Map(steps.map((s) => [s.step, s]));
}

/** Every file under `dir`, relative to it, without Python's bytecode caches. */
function files(dir: string): Map<string, string> {
  const found = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.parentPath.includes("__pycache__"));
  return new Map(found.map((e) => [relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name), "utf8")]));
}

describe.skipIf(skipWithout(python, ["-c", "import grpc, google.protobuf"]))("Python client", () => {
  it("adds a payment, waits for it to complete, reads it back, and decodes errors", async () => {
    const steps = await smoke(tokens.serviceA);
    expect([...steps.keys()]).toEqual([
      "added",
      "waited",
      "got",
      "idempotent",
      "key_reused",
      "invalid",
      "watch_unknown",
      "delayed",
      "wait_timeout",
      "child",
      "bad_token",
    ]);

    const added = steps.get("added")!;
    expect(added).toMatchObject({ type: "payment:process", queue: "money", state: "CREATED", deduplicated: false });
    expect(added.id).toMatch(/^[0-9a-f-]{36}$/);
    // No key given: the client makes one up (a UUID), as the TypeScript SDK does.
    expect(added.idempotency_key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(added.payload).toMatchObject({ amount: 1299, currency: "USD", paymentMethod: "tok_visa" });

    expect(steps.get("waited")).toMatchObject({ id: added.id, state: "COMPLETED", is_final: true });
    expect(steps.get("waited")!.result).toBeTypeOf("object");
    expect(steps.get("waited")!.completed_at).toBeTruthy();
    expect(steps.get("got")).toMatchObject({ id: added.id, state: "COMPLETED", payload: added.payload, created_by: "svc-a" });

    const idempotent = steps.get("idempotent")!;
    expect(idempotent.second).toBe(idempotent.first);
    expect(idempotent).toMatchObject({ first_deduplicated: false, second_deduplicated: true });
    expect(steps.get("key_reused")).toMatchObject({ code: "ALREADY_EXISTS", reason: "IDEMPOTENCY_KEY_REUSED", metadata: { job_id: idempotent.first } });

    const invalid = steps.get("invalid")!;
    expect(invalid.code).toBe("INVALID_ARGUMENT");
    expect(invalid.violations).toEqual(expect.arrayContaining([expect.objectContaining({ field: "payload.orderId" })]));

    expect(steps.get("watch_unknown")).toMatchObject({ code: "NOT_FOUND" });
    // Options reach the service; waiting on a job that will not run for an hour gives up at the timeout.
    const delayed = steps.get("delayed")!;
    expect(delayed).toMatchObject({ state: "CREATED", priority: 5, retry_limit: 1 });
    expect(delayed.delay_seconds).toBeGreaterThan(3590);
    expect(steps.get("wait_timeout")).toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(steps.get("child")).toMatchObject({ state: "WAITING", depends_on: [delayed.id], concurrency_key: "customer-7" });
    expect(steps.get("bad_token")).toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("runs a worker for a job type of its own: registered, added, built with progress, COMPLETED", async () => {
    const { stdout } = await run(
      python,
      ["clients/python/examples/worker.py", "--target", `127.0.0.1:${svc.service.port}`, "--token", tokens.admin, "--once"],
      {
        cwd: root,
        timeout: 90_000,
        env: { PATH: process.env.PATH ?? "", PYTHONDONTWRITEBYTECODE: "1" },
      },
    );
    const done = stdout.match(/^[0-9a-f-]{36}: COMPLETED \{"pages": 6, "reportId": "rep_[0-9a-f]{8}"\} \(progress 100%\)$/gm) ?? [];
    expect(done, stdout).toHaveLength(3);
  });

  // The plugin takes no --version; given an empty request on stdin it answers an empty response.
  it.skipIf(skipWithout("/usr/bin/protoc") || skipWithout("/usr/bin/grpc_python_plugin", []))(
    "has committed generated code that buf generate reproduces",
    async () => {
      const out = mkdtempSync(join(tmpdir(), "qs-python-gen-"));
      try {
        await run("npx", ["--no-install", "buf", "generate", "--template", "buf.gen.python.yaml", "-o", out], { cwd: root, timeout: 60_000 });
        const fresh = files(join(out, generated));
        expect(fresh.size).toBeGreaterThan(0);
        const committed = files(join(root, generated));
        expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
        for (const [path, text] of fresh) expect(committed.get(path), `${generated}/${path} differs from buf generate's output`).toBe(text);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );
});
