/**
 * Telling a database that cannot be reached apart from a query that failed.
 */

const connectionErrorCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]);

/** Whether `err` says the database cannot be reached (as opposed to a query failing). */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] } | undefined;
  if (!e || depth > 4) return false;
  if (e.cause !== undefined && isDatabaseUnavailable(e.cause, depth + 1)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  if (e.code && connectionErrorCodes.has(e.code)) return true;
  // A FATAL error ends the session: refused connections (too many, not accepting), terminated backends.
  const severity = (e as { severity?: string }).severity;
  if (severity === "FATAL" || severity === "PANIC") return true;
  // Class 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect now), 53300 (too many connections).
  if (e.code && (/^08/.test(e.code) || ["57P01", "57P02", "57P03", "53300"].includes(e.code))) return true;
  const m = e.message ?? "";
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused|terminating connection/i.test(
    m,
  );
}
