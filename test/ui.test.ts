/**
 * The dashboard end to end, in Debian's Chromium driven by playwright-core, against two real
 * replicas on one database: sign in, watch a queue's numbers move while jobs run, pause a queue in
 * the UI and see the pause hold on the other replica, open a failed job and read its error and
 * timeline, redrive dead letters in bulk, and a service principal kept out of admin actions. Each
 * page's screenshot goes to test-artifacts/ui/.
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { AlertMetric, MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { ScheduleService } from "../gen/jobs/v1/schedule_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { skipWithout } from "./support/external-tools.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { startTestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../test-artifacts/ui/", import.meta.url));

runAlone();

describe.skipIf(skipWithout(CHROMIUM, ["--version"]))("the dashboard in a browser", () => {
  const db = testDatabase();
  const processes: ServiceProcess[] = [];
  let a: ServiceProcess;
  let b: ServiceProcess;
  let browser: Browser;
  const api = (svc: ServiceProcess, token: string = tokens.admin) => ({
    jobs: client(JobService, svc.baseUrl, { protocol: "grpc", token }),
    queues: client(QueueService, svc.baseUrl, { protocol: "grpc", token }),
  });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // Workers on, sandbox payments a little slow, so numbers move while the page watches.
    [a, b] = await Promise.all([
      startReplica(db, processes, { WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "20" }),
      startReplica(db, processes, { WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "20" }),
    ]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await Promise.all(processes.map((p) => p.stop("SIGTERM")));
    await db.drop();
  });

  /** A new tab signed in with `token`, on the Overview. */
  async function signedIn(token: string): Promise<Page> {
    const page = await browser.newPage({ colorScheme: "light", viewport: { width: 1400, height: 900 } });
    page.on("pageerror", (err) => {
      throw err;
    });
    await page.goto(`${a.baseUrl}/`);
    await page.waitForURL(/\/ui\/$/);
    await page.getByLabel("Bearer token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    return page;
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

  it("serves the page with a strict Content-Security-Policy, and refuses a wrong token with a clear message", async () => {
    const res = await fetch(`${a.baseUrl}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const html = await res.text();
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${a.baseUrl}${script}`, { headers: { "accept-encoding": "gzip" } });
    expect(asset.headers.get("cache-control")).toContain("immutable");
    // A route of the dashboard is the page too (the browser routes it).
    expect((await fetch(`${a.baseUrl}/ui/jobs/anything`)).status).toBe(200);
    expect((await fetch(`${a.baseUrl}/ui/%E0%A4%A`)).status).toBe(400);
    // API clients asking / get what they always got.
    expect((await fetch(`${a.baseUrl}/`)).status).toBe(404);

    const page = await browser.newPage();
    await page.goto(`${a.baseUrl}/ui/`);
    await page.getByLabel("Bearer token").fill("not-a-token-of-this-service");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("does not know this token");
    await shot(page, "sign-in");
    await page.close();
  });

  it("is off with UI_ENABLED=false", async () => {
    const off = await startTestService(db, { UI_ENABLED: "false" });
    try {
      expect((await fetch(`${off.baseUrl}/ui/`)).status).toBe(404);
      expect((await fetch(`${off.baseUrl}/`, { headers: { accept: "text/html" } })).status).toBe(404);
    } finally {
      await off.stop();
    }
  });

  it("shows a queue's numbers moving while jobs run, live", async () => {
    const page = await signedIn(tokens.admin);
    const completedRate = page.locator('tr[data-queue="money"] [data-field="completed-rate"]');
    await expect.poll(() => completedRate.textContent(), { timeout: 10_000 }).toBe("0.0/s");
    const { jobs } = api(a, tokens.serviceA);
    for (let i = 0; i < 40; i++) await jobs.addJob({ type: "payment:process", payload: payment() });
    await expect.poll(() => completedRate.textContent(), { timeout: 15_000 }).not.toBe("0.0/s");
    await expect.poll(() => page.locator(".live").first().textContent()).toBe("live");
    await shot(page, "overview");
    await page.close();
  });

  it("pauses a queue from the UI, and the pause holds on the other replica", async () => {
    const page = await signedIn(tokens.admin);
    await page.getByRole("link", { name: "communication" }).click();
    await page.getByRole("heading", { name: /Queue communication/ }).waitFor();
    await page.getByRole("button", { name: "Pause queue" }).click();
    await page.getByRole("button", { name: "Resume queue" }).waitFor();
    // Replica b: the queue is paused, and an email added there does not start.
    const other = api(b);
    const { queues } = await other.queues.listQueues({});
    expect(queues.find((q) => q.name === "communication")?.paused).toBe(true);
    const { job } = await other.jobs.addJob({ type: "email:send", payload: { to: ["ops@example.com"], subject: "paused", text: "waits" } });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await other.jobs.getJob({ id: job!.id })).job!.state).toBe(JobState.CREATED);
    await shot(page, "queue");
    await page.getByRole("button", { name: "Resume queue" }).click();
    await page.getByRole("button", { name: "Pause queue" }).waitFor();
    await eventually(async () => (await other.jobs.getJob({ id: job!.id })).job!.state === JobState.COMPLETED, "the email to run after resume");
    await page.close();
  });

  it("opens a failed job and shows its error and timeline", async () => {
    const { jobs } = api(a, tokens.serviceA);
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) });
    await eventually(async () => (await jobs.getJob({ id: job!.id })).job!.state === JobState.FAILED, "the declined payment to fail");
    const page = await signedIn(tokens.admin);
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByLabel("Job id").fill(job!.id);
    await page.getByRole("button", { name: "Open" }).click();
    await page.getByTestId("last-error").waitFor();
    expect(await page.getByTestId("last-error").textContent()).toMatch(/declined/i);
    const timeline = page.getByTestId("timeline");
    await expect.poll(() => timeline.textContent()).toContain("Added");
    expect(await timeline.textContent()).toContain("Failed");
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByLabel("State").selectOption("FAILED");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: job!.id.slice(0, 8) }).waitFor();
    // The page follows WatchJobs: live as soon as the stream is open, before any change arrives.
    await expect.poll(() => page.locator("h1 .live").textContent()).toBe("live");
    await shot(page, "jobs");
    await page.getByRole("link", { name: job!.id.slice(0, 8) }).click();
    await page.getByTestId("last-error").waitFor();
    await shot(page, "job");
    await page.close();
  });

  it("shows a waiting job's parents as links", async () => {
    const { jobs } = api(a, tokens.serviceA);
    const later = { schedule: { case: "delay" as const, value: { seconds: 3600n, nanos: 0 } } };
    const { job: parent } = await jobs.addJob({ type: "payment:process", payload: payment(), options: later });
    const { job: child } = await jobs.addJob({
      type: "email:send",
      payload: { to: ["ada@example.com"], subject: "Receipt", text: "Paid." },
      options: { dependsOn: [parent!.id], concurrencyKey: "customer-42" },
    });
    const page = await signedIn(tokens.serviceA);
    await page.goto(`${a.baseUrl}/ui/jobs/${child!.id}`);
    await page.getByRole("link", { name: parent!.id }).waitFor();
    expect(await page.locator("h1").textContent()).toContain("waiting");
    expect(await page.getByText("customer-42").count()).toBe(1);
    await page.getByRole("link", { name: parent!.id }).click();
    await expect.poll(() => page.locator("h1").textContent()).toContain(parent!.id);
    await page.close();
  });

  it("redrives dead letters in bulk", async () => {
    const { jobs } = api(a, tokens.serviceA);
    const added = await Promise.all(
      Array.from({ length: 3 }, () => jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) })),
    );
    const admin = api(a);
    // All three dead-lettered before counting (an earlier test's dead letter is in the queue too, so a
    // count of at least three could be reached with one of these still on its way).
    await eventually(
      async () => (await Promise.all(added.map(({ job }) => admin.jobs.getJob({ id: job!.id })))).every((r) => r.job!.deadLetterJobId !== ""),
      "the three payments to be dead-lettered",
    );
    const before = (await admin.queues.listDeadLetters({ queue: "money", pageSize: 100 })).jobs.length;
    const payments = async () => {
      let n = 0;
      for (let pageToken = ""; ; ) {
        const page = await admin.jobs.listJobs({ type: "payment:process", pageSize: 100, pageToken });
        n += page.jobs.length;
        if (!page.nextPageToken) return n;
        pageToken = page.nextPageToken;
      }
    };
    const paymentsBefore = await payments();
    const page = await signedIn(tokens.admin);
    await page.goto(`${a.baseUrl}/ui/queues/money`);
    await page.getByLabel("Select all dead letters on this page").check();
    await page.getByRole("button", { name: /^Redrive \d+ selected$/ }).click();
    await expect.poll(() => page.getByRole("status").first().textContent()).toContain(`Redriven: ${before} jobs`);
    // Each came back as a new payment job of its line.
    expect(await payments()).toBe(paymentsBefore + before);
    expect(added).toHaveLength(3);
    await page.close();
  });

  it("sets a processing rate limit and manages an alert rule, as an operator would", async () => {
    const page = await signedIn(tokens.admin);
    await page.goto(`${a.baseUrl}/ui/queues/money`);
    await page.getByRole("heading", { name: /Queue money/ }).waitFor();
    const form = page.getByRole("form", { name: "Set a processing rate limit" });
    await form.getByRole("combobox", { name: /^On/ }).selectOption("nft:mint");
    await form.getByLabel("Starts").fill("7");
    await form.getByLabel("per seconds").fill("2");
    await form.getByRole("button", { name: "Set limit" }).click();
    await page.getByText("nft:mint: 7 per 2 s").waitFor();
    const monitoring = client(MonitoringService, b.baseUrl, { protocol: "grpc", token: tokens.admin });
    const limit = (await monitoring.listRateLimits({})).rateLimits.find((l) => l.key === "nft:mint");
    expect([limit?.scope, limit?.limit, Number(limit?.interval?.seconds)]).toEqual([RateLimitScope.JOB_TYPE, 7, 2]);
    await page.getByRole("button", { name: "Remove the limit on nft:mint" }).click();
    await expect.poll(async () => (await monitoring.listRateLimits({})).rateLimits.some((l) => l.key === "nft:mint")).toBe(false);

    // An API principal's limit, on the Rate limits page.
    await page.getByRole("link", { name: "Rate limits" }).click();
    const limits = page.getByRole("form", { name: "Set a rate limit" });
    await limits.getByRole("combobox", { name: /^Scope/ }).selectOption({ label: "API principal" });
    await limits.getByLabel("Key").fill("svc-b");
    await limits.getByLabel("Limit").fill("100");
    await limits.getByRole("button", { name: "Set limit" }).click();
    await expect
      .poll(async () => (await monitoring.listRateLimits({})).rateLimits.map((l) => [l.scope, l.key, l.limit]))
      .toContainEqual([RateLimitScope.API_PRINCIPAL, "svc-b", 100]);
    await page.getByRole("button", { name: "Remove the limit on svc-b" }).click();
    await expect.poll(async () => (await monitoring.listRateLimits({})).rateLimits.length).toBe(0);

    await page.getByRole("link", { name: "Alerts" }).click();
    const rule = page.getByRole("form", { name: "New alert rule" });
    await rule.getByLabel("Name").fill("money backlog");
    await rule.getByRole("combobox", { name: /^Queue/ }).selectOption("money");
    await rule.getByLabel(/^Above/).fill("500");
    await rule.getByRole("button", { name: "Create rule" }).click();
    await page.getByRole("button", { name: "Disable" }).click();
    await expect
      .poll(async () => (await monitoring.listAlertRules({})).rules.map((r) => [r.name, r.metric, r.queue, r.threshold, r.enabled]))
      .toEqual([["money backlog", AlertMetric.QUEUE_DEPTH, "money", 500, false]]);
    await shot(page, "alerts");
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Delete" }).click();
    await expect.poll(async () => (await monitoring.listAlertRules({})).rules.length).toBe(0);
    await page.close();
  });

  it("lists schedules with their next and last runs, and pauses one", async () => {
    const schedules = client(ScheduleService, a.baseUrl, { protocol: "grpc", token: tokens.admin });
    await schedules.createSchedule({
      schedule: { name: "nightly-rollup", type: "analytics:aggregate", cron: "0 3 * * *", timeZone: "Europe/Paris", payload: {} },
    });
    const page = await signedIn(tokens.admin);
    await page.getByRole("link", { name: "Schedules" }).click();
    const row = page.locator('tr[data-schedule="nightly-rollup"]');
    await row.waitFor();
    expect(await row.textContent()).toContain("0 3 * * *");
    await row.getByRole("button", { name: "Pause" }).click();
    await row.getByRole("button", { name: "Resume" }).waitFor();
    expect((await schedules.getSchedule({ name: "nightly-rollup" })).schedule!.paused).toBe(true);
    await shot(page, "schedules");
    await page.close();
  });

  it("keeps a service principal out of admin actions", async () => {
    const page = await signedIn(tokens.serviceA);
    expect(await page.getByText("svc-a").count()).toBeGreaterThan(0);
    await page.goto(`${a.baseUrl}/ui/queues/money`);
    await page.getByRole("heading", { name: /Queue money/ }).waitFor();
    expect(await page.getByText("Pausing, redriving and purging need an admin token.").count()).toBe(1);
    expect(await page.getByRole("button", { name: /Pause queue|Redrive|Purge/ }).count()).toBe(0);
    await page.goto(`${a.baseUrl}/ui/jobs`);
    await page.getByRole("heading", { name: /Jobs/ }).waitFor();
    expect(await page.getByRole("button", { name: /Retry|Cancel/ }).count()).toBe(0);
    await shot(page, "service-principal");
    await page.close();
  });
});
