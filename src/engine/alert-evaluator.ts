/**
 * The alert evaluator: one replica at a time evaluates every enabled rule (the leader holds an
 * advisory lock on a dedicated connection; when it dies its connection closes, the lock goes, and
 * another replica takes over at its next try). A rule whose metric is above its threshold opens one
 * alert (FIRING) and notifies its targets once; the alert stays open (FIRING, or ACKNOWLEDGED by an
 * admin) until the metric is back under the threshold (RESOLVED).
 *
 * Notifications: a webhook (HTTP POST of a JSON body, retried, only to allowed hosts) and/or an email
 * sent as an `email:send` job (idempotency key `alert:<id>`, so one email per firing). A notification
 * that failed is tried again at the next evaluations, up to MAX_NOTIFY_ATTEMPTS.
 */
import pg from "pg";
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { quantile } from "./activity.js";
import type { Enqueuer } from "./enqueue.js";
import type { Metrics, MetricsView } from "./metrics.js";
import { systemJob } from "./new-job.js";
import type { AlertQueries, AlertRow, AlertRuleRow } from "./queries/alert-queries.js";
import type { JobRegistry } from "./registry.js";
import { postWebhook, WebhookAddressRefused, type WebhookPolicy } from "./webhooks.js";

/** Evaluations a notification is tried in before it is given up. */
export const MAX_NOTIFY_ATTEMPTS = 5;
/** Webhook attempts within one evaluation, and the pause before each retry. */
export const WEBHOOK_RETRY_DELAYS_MS = [0, 500, 1500];

export interface AlertEvaluatorOptions {
  url: string;
  schema: string;
  pool: Pool;
  queries: AlertQueries;
  metrics: Metrics;
  enqueuer: Enqueuer;
  registry: JobRegistry;
  logger: Logger;
  intervalMs: number;
  /** Where webhooks may be sent. */
  webhooks: WebhookPolicy;
  webhookTimeoutMs: number;
}

/** The value of a rule's metric in a snapshot. */
export function metricValue(rule: AlertRuleRow, view: MetricsView): number {
  const q = view.queues.find((x) => x.queue === rule.queue);
  if (!q) return 0;
  const t = rule.job_type ? q.types.find((x) => x.type === rule.job_type) : undefined;
  const live = t?.live ?? q.live;
  const activity = t?.activity ?? q.activity;
  switch (rule.metric) {
    case "queue_depth":
      return live.queued;
    case "dead_letter_count":
      return live.deadLettered;
    case "oldest_queued_age":
      return live.oldestReadySince ? Math.max(0, (view.capturedAt.getTime() - live.oldestReadySince.getTime()) / 1000) : 0;
    case "failure_rate": {
      const finished = activity.completed + activity.failed;
      return finished === 0 ? 0 : activity.failed / finished;
    }
    case "run_time_percentile":
      return (quantile(activity.run, rule.percentile ?? 99) ?? 0) / 1000;
  }
}

const label: Record<AlertRuleRow["metric"], string> = {
  queue_depth: "queue depth",
  failure_rate: "failure rate",
  dead_letter_count: "dead letters",
  oldest_queued_age: "oldest queued age (s)",
  run_time_percentile: "run time percentile (s)",
};

/** A readable one-line summary of a firing. */
export function summaryOf(rule: AlertRuleRow, value: number): string {
  const what = rule.metric === "run_time_percentile" ? `run time p${rule.percentile}` : label[rule.metric];
  const where = rule.job_type ? `queue ${rule.queue} (${rule.job_type})` : `queue ${rule.queue}`;
  return `${where}: ${what} ${+value.toFixed(4)} > ${rule.threshold}`;
}

/** A running evaluator. */
export interface AlertEvaluator {
  isLeader(): boolean;
  /** Evaluates now if this replica leads (tests). */
  evaluateNow(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts the evaluator loop. */
export function startAlertEvaluator(options: AlertEvaluatorOptions): AlertEvaluator {
  const { pool, queries, logger } = options;
  const lockKey = `queue-service:alerts:${options.schema}`;
  let leaderClient: pg.Client | undefined;
  let stopped = false;
  let running: Promise<boolean> | undefined;

  async function lead(): Promise<boolean> {
    if (leaderClient) return true;
    const c = new pg.Client({ connectionString: options.url, application_name: "queue-service:alerts", keepAlive: true });
    c.on("error", (err) => {
      logger.warn({ err: err.message }, "alert evaluator lost its leader connection");
      if (leaderClient === c) leaderClient = undefined;
    });
    try {
      await c.connect();
      const { rows } = await c.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [lockKey]);
      if (!rows[0]!.locked || stopped) {
        await c.end().catch(() => {});
        return false;
      }
      leaderClient = c;
      logger.info("this replica now evaluates alert rules");
      return true;
    } catch (err) {
      await c.end().catch(() => {});
      logger.debug({ err: (err as Error).message }, "could not try alert leadership");
      return false;
    }
  }

  async function deliver(url: string, body: unknown): Promise<void> {
    let last: unknown;
    for (const delay of WEBHOOK_RETRY_DELAYS_MS) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      try {
        const status = await postWebhook(url, body, options.webhooks, options.webhookTimeoutMs);
        if (status >= 200 && status < 300) return;
        last = new Error(`webhook answered ${status}`);
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) break;
      } catch (err) {
        last = err;
        if (err instanceof WebhookAddressRefused) break;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  async function notify(alert: AlertRow, rule: AlertRuleRow | undefined): Promise<void> {
    if (!rule) return queries.notified(pool, alert.id, undefined);
    const body = {
      alert: {
        id: alert.id,
        rule: rule.name,
        ruleId: rule.id,
        state: alert.state,
        metric: rule.metric,
        queue: rule.queue,
        jobType: rule.job_type,
        value: alert.value,
        threshold: alert.threshold,
        summary: alert.summary,
        firedAt: alert.fired_at.toISOString(),
        description: rule.description,
      },
      service: "queue-service",
    };
    const errors: string[] = [];
    for (const target of rule.targets) {
      try {
        if ("webhook" in target) {
          await deliver(target.webhook.url, body);
        } else if ("email" in target) {
          const type = options.registry.type("email:send")!;
          const job = systemJob(
            type,
            {
              to: target.email.to,
              subject: `[alert] ${rule.name}: ${alert.summary}`,
              text: `${alert.summary}\n\n${rule.description}\n\nFired at ${alert.fired_at.toISOString()} (alert ${alert.id}).`,
            },
            `alert:${alert.id}`,
          );
          const [outcome] = await options.enqueuer.add([{ principal: "alerts", exemptFromQuotas: true, job }], true);
          if (!outcome?.ok) throw outcome?.error ?? new Error("email not added");
        }
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    await queries.notified(pool, alert.id, errors.length > 0 ? errors.join("; ").slice(0, 1000) : undefined);
    if (errors.length > 0) logger.warn({ alertId: alert.id, errors }, "alert notification failed; will retry");
    else logger.info({ alertId: alert.id, rule: rule.name }, "alert notified");
  }

  async function evaluate(): Promise<boolean> {
    if (stopped || !(await lead())) return false;
    const rules = (await queries.rules(pool)).filter((r) => r.enabled);
    const views = new Map<number, MetricsView>();
    for (const w of new Set(rules.map((r) => r.window_seconds))) views.set(w, await options.metrics.snapshot(w));
    const open = new Map((await queries.open(pool)).map((a) => [a.rule_id, a]));
    for (const rule of rules) {
      const value = metricValue(rule, views.get(rule.window_seconds)!);
      const current = open.get(rule.id);
      if (value > rule.threshold) {
        if (current) await queries.observe(pool, current.id, value);
        else {
          const fired = await queries.fire(pool, rule, value, summaryOf(rule, value));
          if (fired) logger.warn({ alertId: fired.id, rule: rule.name, value }, "alert firing");
        }
      } else if (current) {
        await queries.resolve(pool, current.id, value);
        logger.info({ alertId: current.id, rule: rule.name, value }, "alert resolved");
      }
    }
    // Disabled rules' open alerts resolve.
    for (const [ruleId, a] of open) if (!rules.some((r) => r.id === ruleId)) await queries.resolve(pool, a.id, a.last_value);
    const byId = new Map(rules.map((r) => [r.id, r]));
    for (const alert of await queries.unnotified(pool, MAX_NOTIFY_ATTEMPTS))
      await notify(alert, alert.rule_id ? (byId.get(alert.rule_id) ?? (await queries.rule(pool, alert.rule_id))) : undefined);
    return true;
  }

  const evaluateNow = () => {
    running ??= evaluate()
      .catch((err: Error) => {
        logger.warn({ err: err.message }, "alert evaluation failed");
        return false;
      })
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void evaluateNow(), options.intervalMs);
  timer.unref();

  return {
    isLeader: () => leaderClient !== undefined,
    evaluateNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
      const c = leaderClient;
      leaderClient = undefined;
      if (c) await c.end().catch(() => {});
    },
  };
}
