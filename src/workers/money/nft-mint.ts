/**
 * `nft:mint`: mints a ticket's NFT to a wallet once per ticket: the business key is (principal,
 * `ticketId`), whatever the number of jobs, attempts and redrives.
 */
import { z } from "zod";
import type { Processor } from "../../engine/processor.js";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { MintProvider } from "../../providers/money-providers.js";
import { providerSpan } from "../../telemetry/spans.js";
import { externalId } from "../payload-fields.js";
import type { MoneyOperations } from "./money-operations.js";

const metadataUri = z
  .string()
  .max(2048, "must be at most 2048 characters")
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "https:" && url.hostname !== "") || (url.protocol === "ipfs:" && value.length > "ipfs://".length);
    } catch {
      return false;
    }
  }, "must be an https:// or ipfs:// URI");

/** The payload of `nft:mint`. */
export const nftMintPayload = z.strictObject({
  ticketId: externalId,
  orderId: externalId,
  recipientWallet: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be 0x followed by 40 hex digits"),
  metadataUri,
});

export type NftMintPayload = z.infer<typeof nftMintPayload>;

/** The `nft:mint` job type. */
export const nftMint: JobTypeDefinition<NftMintPayload> = {
  type: "nft:mint",
  queue: "money",
  payload: nftMintPayload,
};

/** Mints through the configured mint provider, once per (principal, ticketId). */
export function nftMintProcessor(provider: MintProvider, operations: MoneyOperations): Processor<NftMintPayload> {
  return {
    definition: nftMint,
    process: (ctx) => {
      const p = ctx.payload;
      return providerSpan(`${provider.name}.mint`, { "provider.name": provider.name, "job.root_id": ctx.rootJobId }, () =>
        operations.perform(
          ctx,
          {
            kind: "mint",
            key: p.ticketId,
            label: `ticket ${p.ticketId}`,
            // A wallet address is the same in any letter case (EIP-55 only adds a checksum).
            terms: { orderId: p.orderId, recipientWallet: p.recipientWallet.toLowerCase(), metadataUri: p.metadataUri },
          },
          (call) => provider.mint(p, call),
        ),
      );
    },
  };
}
