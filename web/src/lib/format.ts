/** How the dashboard writes times, durations and numbers: relative for reading, absolute on hover. */

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
  ["second", 1000],
];
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "5 seconds ago", "in 3 minutes", "now". */
export function relativeTime(at: Date, now: Date = new Date()): string {
  const diff = at.getTime() - now.getTime();
  const abs = Math.abs(diff);
  if (abs < 1000) return "now";
  for (const [unit, ms] of UNITS) if (abs >= ms) return relative.format(Math.round(diff / ms), unit);
  return "now";
}

/** ISO-like local time with seconds and the zone: "2026-12-04 23:57:35 UTC". */
export function absoluteTime(at: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const zone =
    Intl.DateTimeFormat("en", { timeZoneName: "short" })
      .formatToParts(at)
      .find((p) => p.type === "timeZoneName")?.value ?? "";
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())} ${zone}`.trim();
}

/** "850 ms", "12.5 s", "3 min 20 s", "10 min", "2 h 5 min", "14 days". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  if (ms < 3_600_000) return two(Math.floor(ms / 60_000), "min", Math.round((ms % 60_000) / 1000), "s");
  if (ms < 2 * 86_400_000) return two(Math.floor(ms / 3_600_000), "h", Math.round((ms % 3_600_000) / 60_000), "min");
  return two(Math.floor(ms / 86_400_000), "days", Math.round((ms % 86_400_000) / 3_600_000), "h");
}

/** Counts with thousands separators; rates with one decimal below 10. */
export function formatCount(n: number | bigint): string {
  return Number(n).toLocaleString("en");
}
export function formatRate(perSecond: number): string {
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toLocaleString("en")}/s`;
}

/** Failures as a share of finished jobs, or "–" when nothing finished. */
export function failureRate(completed: number, failed: number): string {
  const total = completed + failed;
  return total === 0 ? "–" : `${((failed / total) * 100).toFixed(failed / total < 0.1 ? 1 : 0)}%`;
}
