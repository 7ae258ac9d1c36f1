/**
 * The service's queues and their default policies (API.md, "Job types").
 */
import type { QueueDefinition } from "../engine/registry.js";

const day = 24 * 60 * 60;

/** `money`: payments, refunds and NFT mints. Effectively once; retried with backoff, then dead-lettered. */
export const moneyQueue: QueueDefinition = {
  name: "money",
  description: "Payments, refunds and NFT mints",
  policy: {
    retryLimit: 3,
    retryDelaySeconds: 5,
    retryBackoff: true,
    retryDelayMaxSeconds: 300,
    expireInSeconds: 60 * 60,
    priority: 0,
    deadLetterRetentionSeconds: 14 * day,
    deleteAfterSeconds: 7 * day,
    maxRetryLimit: 10,
    maxExpireInSeconds: 6 * 60 * 60,
    concurrency: 20,
    keyConcurrency: 0,
  },
};

/** `communication`: email. At least once; retried with backoff, then dead-lettered. */
export const communicationQueue: QueueDefinition = {
  name: "communication",
  description: "Email",
  policy: {
    retryLimit: 5,
    retryDelaySeconds: 10,
    retryBackoff: true,
    retryDelayMaxSeconds: 600,
    expireInSeconds: 5 * 60,
    priority: 0,
    deadLetterRetentionSeconds: 14 * day,
    deleteAfterSeconds: 7 * day,
    maxRetryLimit: 20,
    maxExpireInSeconds: 60 * 60,
    concurrency: 10,
    keyConcurrency: 0,
  },
};

/** `background`: analytics rollups. Low priority; dead-lettered after its retries. */
export const backgroundQueue: QueueDefinition = {
  name: "background",
  description: "Analytics rollups",
  policy: {
    retryLimit: 2,
    retryDelaySeconds: 30,
    retryBackoff: true,
    retryDelayMaxSeconds: 600,
    expireInSeconds: 15 * 60,
    priority: -10,
    deadLetterRetentionSeconds: 7 * day,
    deleteAfterSeconds: 2 * day,
    maxRetryLimit: 10,
    maxExpireInSeconds: 60 * 60,
    concurrency: 2,
    keyConcurrency: 0,
  },
};

/** Every queue of the service. */
export const queues: readonly QueueDefinition[] = [moneyQueue, communicationQueue, backgroundQueue];
