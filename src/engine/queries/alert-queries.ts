/**
 * SQL of alert rules and alert instances.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

export type AlertMetricName = "queue_depth" | "failure_rate" | "dead_letter_count" | "oldest_queued_age" | "run_time_percentile";
export type AlertStateName = "firing" | "acknowledged" | "resolved";

/** Where a firing is announced. */
export type AlertTarget = { webhook: { url: string } } | { email: { to: string[] } };

export interface AlertRuleRow {
  id: string;
  name: string;
  description: string;
  metric: AlertMetricName;
  queue: string;
  job_type: string | null;
  threshold: number;
  window_seconds: number;
  percentile: number | null;
  targets: AlertTarget[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface AlertRow {
  id: string;
  rule_id: string | null;
  rule_name: string;
  state: AlertStateName;
  value: number;
  threshold: number;
  last_value: number;
  summary: string;
  fired_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  resolved_at: Date | null;
  notified_at: Date | null;
  notify_attempts: number;
  notify_error: string | null;
}

/** The editable fields of a rule. */
export type RuleFields = Omit<AlertRuleRow, "id" | "created_at" | "updated_at">;

const RULE = "id, name, description, metric, queue, job_type, threshold, window_seconds, percentile, targets, enabled, created_at, updated_at";
const ALERT =
  "id, rule_id, rule_name, state, value, threshold, last_value, summary, fired_at, acknowledged_at, acknowledged_by, resolved_at, notified_at, notify_attempts, notify_error";

/** The alert queries of one installation. */
export function alertQueries(schema: string) {
  const rules = qualified(schema, "alert_rule");
  const alerts = qualified(schema, "alert");
  return {
    async rules(db: Queryable, afterName?: string, limit = 1000): Promise<AlertRuleRow[]> {
      return (
        await db.query<AlertRuleRow>(`SELECT ${RULE} FROM ${rules} WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`, [afterName ?? null, limit])
      ).rows;
    },
    async rule(db: Queryable, id: string, lock = false): Promise<AlertRuleRow | undefined> {
      return (await db.query<AlertRuleRow>(`SELECT ${RULE} FROM ${rules} WHERE id = $1 ${lock ? "FOR UPDATE" : ""}`, [id])).rows[0];
    },
    async createRule(db: Queryable, f: RuleFields): Promise<AlertRuleRow> {
      const { rows } = await db.query<AlertRuleRow>(
        `INSERT INTO ${rules} (name, description, metric, queue, job_type, threshold, window_seconds, percentile, targets, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${RULE}`,
        [f.name, f.description, f.metric, f.queue, f.job_type, f.threshold, f.window_seconds, f.percentile, JSON.stringify(f.targets), f.enabled],
      );
      return rows[0]!;
    },
    async updateRule(db: Queryable, id: string, f: RuleFields): Promise<AlertRuleRow | undefined> {
      const { rows } = await db.query<AlertRuleRow>(
        `UPDATE ${rules} SET name = $2, description = $3, metric = $4, queue = $5, job_type = $6, threshold = $7, window_seconds = $8,
           percentile = $9, targets = $10, enabled = $11, updated_at = now()
         WHERE id = $1 RETURNING ${RULE}`,
        [id, f.name, f.description, f.metric, f.queue, f.job_type, f.threshold, f.window_seconds, f.percentile, JSON.stringify(f.targets), f.enabled],
      );
      return rows[0];
    },
    async deleteRule(db: Queryable, id: string): Promise<boolean> {
      await db.query(`UPDATE ${alerts} SET state = 'resolved', resolved_at = now() WHERE rule_id = $1 AND state IN ('firing', 'acknowledged')`, [id]);
      return ((await db.query(`DELETE FROM ${rules} WHERE id = $1`, [id])).rowCount ?? 0) > 0;
    },

    async alerts(db: Queryable, state: AlertStateName | undefined, after: { firedAt: Date; id: string } | undefined, limit: number): Promise<AlertRow[]> {
      const { rows } = await db.query<AlertRow>(
        `SELECT ${ALERT} FROM ${alerts}
         WHERE ($1::text IS NULL OR state = $1) AND ($2::timestamptz IS NULL OR (fired_at, id) < ($2::timestamptz, $3::uuid))
         ORDER BY fired_at DESC, id DESC LIMIT $4`,
        [state ?? null, after?.firedAt ?? null, after?.id ?? null, limit],
      );
      return rows;
    },
    async alert(db: Queryable, id: string): Promise<AlertRow | undefined> {
      return (await db.query<AlertRow>(`SELECT ${ALERT} FROM ${alerts} WHERE id = $1`, [id])).rows[0];
    },
    /** Open alerts (firing or acknowledged), by rule. */
    async open(db: Queryable): Promise<AlertRow[]> {
      return (await db.query<AlertRow>(`SELECT ${ALERT} FROM ${alerts} WHERE state IN ('firing', 'acknowledged')`)).rows;
    },
    /** Opens an alert for a rule unless one is open already; returns it when it was opened now. */
    async fire(db: Queryable, rule: AlertRuleRow, value: number, summary: string): Promise<AlertRow | undefined> {
      const { rows } = await db.query<AlertRow>(
        `INSERT INTO ${alerts} (rule_id, rule_name, state, value, threshold, last_value, summary)
         VALUES ($1, $2, 'firing', $3, $4, $3, $5)
         ON CONFLICT (rule_id) WHERE state IN ('firing', 'acknowledged') DO NOTHING
         RETURNING ${ALERT}`,
        [rule.id, rule.name, value, rule.threshold, summary],
      );
      return rows[0];
    },
    async observe(db: Queryable, id: string, value: number): Promise<void> {
      await db.query(`UPDATE ${alerts} SET last_value = $2 WHERE id = $1`, [id, value]);
    },
    async resolve(db: Queryable, id: string, value: number): Promise<void> {
      await db.query(`UPDATE ${alerts} SET state = 'resolved', resolved_at = now(), last_value = $2 WHERE id = $1 AND state IN ('firing', 'acknowledged')`, [
        id,
        value,
      ]);
    },
    /** Acknowledges a firing alert; returns the alert after (unchanged when already acknowledged or resolved). */
    async acknowledge(db: Queryable, id: string, by: string): Promise<AlertRow | undefined> {
      await db.query(`UPDATE ${alerts} SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 WHERE id = $1 AND state = 'firing'`, [id, by]);
      return this.alert(db, id);
    },
    /** Firing alerts whose notification has not gone out yet (after `maxAttempts` tries it is given up). */
    async unnotified(db: Queryable, maxAttempts: number): Promise<AlertRow[]> {
      return (
        await db.query<AlertRow>(
          `SELECT ${ALERT} FROM ${alerts} WHERE notified_at IS NULL AND notify_attempts < $1 AND state <> 'resolved' ORDER BY fired_at`,
          [maxAttempts],
        )
      ).rows;
    },
    async notified(db: Queryable, id: string, error: string | undefined): Promise<void> {
      await db.query(
        `UPDATE ${alerts} SET notify_attempts = notify_attempts + 1, notify_error = $2, notified_at = CASE WHEN $2::text IS NULL THEN now() ELSE NULL END WHERE id = $1`,
        [id, error ?? null],
      );
    },
  };
}

export type AlertQueries = ReturnType<typeof alertQueries>;
