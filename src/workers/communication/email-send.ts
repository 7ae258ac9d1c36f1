/**
 * `email:send`: sends one email. At least once: SMTP has no idempotency.
 */
import { z } from "zod";
import type { Processor } from "../../engine/processor.js";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { EmailTransport } from "../../providers/email-transport.js";
import { providerSpan } from "../../telemetry/spans.js";
import { emailAddress } from "../payload-fields.js";

/** Most recipients of one email job. */
export const MAX_RECIPIENTS = 50;

/** The payload of `email:send`. */
export const emailPayload = z
  .strictObject({
    to: z.union(
      [emailAddress, z.array(emailAddress).min(1, "must name at least one recipient").max(MAX_RECIPIENTS, `must name at most ${MAX_RECIPIENTS} recipients`)],
      { error: `must be an email address or a list of 1 to ${MAX_RECIPIENTS} addresses` },
    ),
    subject: z
      .string()
      .min(1, "must not be empty")
      .max(998, "must be at most 998 characters")
      .regex(/^[^\r\n]*$/, "must be one line"),
    text: z.string().optional(),
    html: z.string().optional(),
    replyTo: emailAddress.optional(),
  })
  .refine((p) => p.text !== undefined || p.html !== undefined, { message: "needs at least one of text and html", path: ["text"] });

export type EmailPayload = z.infer<typeof emailPayload>;

/** The `email:send` job type. */
export const emailSend: JobTypeDefinition<EmailPayload> = {
  type: "email:send",
  queue: "communication",
  payload: emailPayload,
};

/** Sends through the configured email transport. At least once: a crash after the send sends again. */
export function emailProcessor(transport: EmailTransport): Processor<EmailPayload> {
  return {
    definition: emailSend,
    async process(ctx) {
      ctx.signal.throwIfAborted(); // a cancel stops it before the send, never after
      ctx.beginSideEffect();
      const p = ctx.payload;
      return providerSpan(`${transport.name}.send`, { "provider.name": transport.name, "email.recipients": Array.isArray(p.to) ? p.to.length : 1 }, () =>
        transport.send({
          to: Array.isArray(p.to) ? p.to : [p.to],
          subject: p.subject,
          text: p.text,
          html: p.html,
          replyTo: p.replyTo,
          rootJobId: ctx.rootJobId,
          jobId: ctx.id,
        }),
      );
    },
  };
}
