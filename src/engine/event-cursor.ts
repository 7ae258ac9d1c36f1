/**
 * Event cursors: an opaque, printable form of a position in the job event log.
 */
import { ValidationError } from "./errors.js";
import type { EventPosition } from "./store/event-queries.js";

/** Encodes a position as a cursor. */
export function encodeCursor(p: EventPosition): string {
  return Buffer.from(`v1:${p.xid}:${p.seq}`).toString("base64url");
}

/** Decodes a cursor; throws INVALID_ARGUMENT naming `field` when it is not one. */
export function decodeCursor(cursor: string, field = "cursor"): EventPosition {
  const match = /^v1:(\d{1,20}):(\d{1,19})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match || cursor.length > 100) throw new ValidationError([{ field, description: "is not a cursor of this service", reason: "INVALID_CURSOR" }]);
  return { xid: match[1]!, seq: Number(match[2]) };
}
