/**
 * Alert webhooks go only where operators allow, so that the service cannot be turned into a way to
 * reach internal addresses (alert rules are written by admins, but a token can leak):
 *
 * - The URL's host and port must be listed in ALERT_WEBHOOK_ALLOWED_HOSTS: `host:port`, or `host`
 *   alone for the scheme's default port (80, 443) only.
 * - Every address the host resolves to must be public: loopback, private, link-local (cloud metadata
 *   included), shared, multicast and reserved ranges are refused, unless an operator lists them in
 *   ALERT_WEBHOOK_ALLOWED_NETWORKS, or lists the address itself as the host.
 * - The connection goes to the addresses that were checked: the check is the connection's own DNS
 *   lookup, so a name cannot resolve to one address for the check and another for the call.
 * - Redirects are not followed.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";

/** Ranges a webhook may not reach unless listed: not the public internet. */
const INTERNAL_RANGES: [string, number, "ipv4" | "ipv6"][] = [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["224.0.0.0", 4, "ipv4"],
  ["240.0.0.0", 4, "ipv4"],
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"],
  ["64:ff9b::", 96, "ipv6"],
  ["100::", 64, "ipv6"],
];

const internal = new BlockList();
for (const [address, prefix, family] of INTERNAL_RANGES) internal.addSubnet(address, prefix, family);

/** Where webhooks may go. */
export interface WebhookPolicy {
  /** `host` or `host:port` entries (ALERT_WEBHOOK_ALLOWED_HOSTS). */
  readonly allowedHosts: readonly string[];
  /** CIDR ranges internal addresses may be in (ALERT_WEBHOOK_ALLOWED_NETWORKS). */
  readonly allowedNetworks: readonly string[];
}

/** The unbracketed host of a URL (`[::1]` is `::1`). */
const hostnameOf = (u: URL) => u.hostname.replace(/^\[(.*)\]$/, "$1");

/** Whether the URL's host and port are listed (the static part of the policy, checked when a rule is saved). */
export function webhookAllowed(url: string, allowedHosts: readonly string[]): boolean {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") return false;
    // `u.host` carries the port only when it is not the scheme's default.
    return allowedHosts.some((h) => h.toLowerCase() === u.host);
  } catch {
    return false;
  }
}

/** The address checker of a policy: whether a webhook may connect to `address`. */
function addressCheck(policy: WebhookPolicy, url: URL): (address: string) => boolean {
  const allowed = new BlockList();
  for (const cidr of policy.allowedNetworks) {
    const [address, prefix] = cidr.split("/");
    allowed.addSubnet(address!, Number(prefix), isIP(address!) === 6 ? "ipv6" : "ipv4");
  }
  // A listed IP literal is allowed explicitly, whatever range it is in.
  const listedLiteral = isIP(hostnameOf(url)) !== 0 ? hostnameOf(url) : undefined;
  // BlockList checks an IPv4-mapped IPv6 address (::ffff:7f00:1) against the IPv4 ranges too.
  return (address) => {
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (address === listedLiteral) return true;
    if (allowed.check(address, family)) return true;
    return !internal.check(address, family);
  };
}

/** Refused by the address policy (the message names the address, never the URL's path). */
export class WebhookAddressRefused extends Error {
  override name = "WebhookAddressRefused";
}

/**
 * POSTs `body` as JSON to `url` if the policy allows it; resolves with the status code. Rejects on a
 * refused host or address, a network error or the timeout.
 */
export function postWebhook(url: string, body: unknown, policy: WebhookPolicy, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!webhookAllowed(url, policy.allowedHosts)) {
      reject(new WebhookAddressRefused(`the webhook's host is not in ALERT_WEBHOOK_ALLOWED_HOSTS`));
      return;
    }
    const u = new URL(url);
    const ok = addressCheck(policy, u);
    const host = hostnameOf(u);
    if (isIP(host) !== 0 && !ok(host)) {
      reject(new WebhookAddressRefused(`${host} is an internal address; list it in ALERT_WEBHOOK_ALLOWED_HOSTS or ALERT_WEBHOOK_ALLOWED_NETWORKS to allow it`));
      return;
    }
    const lookup = (
      hostname: string,
      options: { family?: number | string; all?: boolean },
      callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      dnsLookup(
        hostname,
        { all: true, family: options.family === "IPv6" ? 6 : options.family === "IPv4" ? 4 : (Number(options.family ?? 0) as 0 | 4 | 6) },
        (err, addresses) => {
          if (err) return callback(err, "");
          const refused = addresses.find((a) => !ok(a.address));
          if (refused)
            return callback(
              new WebhookAddressRefused(`${hostname} resolves to ${refused.address}, an internal address not in ALERT_WEBHOOK_ALLOWED_NETWORKS`),
              "",
            );
          if (options.all) return callback(null, addresses);
          callback(null, addresses[0]!.address, addresses[0]!.family);
        },
      );
    };
    const payload = JSON.stringify(body);
    const req = (u.protocol === "https:" ? https : http).request(
      u,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), "user-agent": "queue-service-alerts" },
        lookup: lookup as never,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
