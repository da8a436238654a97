/**
 * The CSR cleaner (Kubernetes' `certificatesigningrequest-cleaner-controller`,
 * pkg/controller/certificates/cleaner): a periodic pass (hourly by default) that deletes
 * requests nobody needs any more:
 *
 * - issued (approved with a certificate) more than an hour after the approval;
 * - denied, or failed, more than an hour after that condition;
 * - pending (neither approved, denied nor failed) for more than 24 hours since creation;
 * - issued with a certificate that has expired.
 *
 * The deadlines count from the condition's `lastUpdateTime`, as Kubernetes.
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';
import { definePlugin, isConflict, isNotFound, LEADER_ELECTION_SCHEMA, runWhileLeading, type ApiClient, type Informer, type LeaderElectionConfig, type Logger } from '@kubernel/sdk';
import { csrConditions, csrPath, CSR_PATH, type Csr } from './csr.js';

/** The plugin id (Kubernetes' controller name). */
export const CSR_CLEANER_CONTROLLER_ID = 'certificatesigningrequest-cleaner-controller';

const HOUR = 3_600_000;
/** How long an approved (issued) request is kept. */
export const APPROVED_EXPIRATION_MS = HOUR;
/** How long a denied request is kept. */
export const DENIED_EXPIRATION_MS = HOUR;
/** How long a failed request is kept. */
export const FAILED_EXPIRATION_MS = HOUR;
/** How long a pending request is kept. */
export const PENDING_EXPIRATION_MS = 24 * HOUR;

/** Why a request should go at `now` (a short reason), or undefined to keep it. */
export function csrCleanupReason(csr: Csr, now: number): string | undefined {
  const conditions = csrConditions(csr);
  const since = (type: string): number | undefined => {
    const c = conditions.find((x) => x.type === type);
    if (!c) return undefined;
    const t = Date.parse(c.lastUpdateTime ?? c.lastTransitionTime ?? '');
    return Number.isNaN(t) ? undefined : t;
  };
  const certificate = csr.status?.certificate ? Buffer.from(String(csr.status.certificate), 'base64').toString('utf8') : '';
  const approvedAt = since('Approved');
  if (certificate && approvedAt !== undefined && now > approvedAt + APPROVED_EXPIRATION_MS) return 'issued more than an hour ago';
  const deniedAt = since('Denied');
  if (deniedAt !== undefined && now > deniedAt + DENIED_EXPIRATION_MS) return 'denied more than an hour ago';
  const failedAt = since('Failed');
  if (failedAt !== undefined && now > failedAt + FAILED_EXPIRATION_MS) return 'failed more than an hour ago';
  const pending = !conditions.some((c) => ['Approved', 'Denied', 'Failed'].includes(c.type));
  const created = Date.parse(String(csr.metadata?.creationTimestamp ?? ''));
  if (pending && !Number.isNaN(created) && now > created + PENDING_EXPIRATION_MS) return 'pending for more than 24 hours';
  if (certificate && certificateExpired(certificate, now)) return 'its certificate has expired';
  return undefined;
}

/** True when any certificate of the PEM bundle has expired (an unparseable one counts as expired: nobody can use it). */
function certificateExpired(pem: string, now: number): boolean {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  for (const b of blocks) {
    try {
      if (Date.parse(new X509Certificate(b).validTo) < now) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/**
 * One cleaning pass: deletes every request {@link csrCleanupReason} names (with its uid as a
 * precondition, so a new request of the same name survives). Resolves with the names deleted.
 */
export async function cleanCsrs(api: Pick<ApiClient, 'request'>, csrs: Pick<Informer<Csr>, 'list'>, logger: Logger, now = Date.now()): Promise<string[]> {
  const deleted: string[] = [];
  for (const csr of csrs.list()) {
    const reason = csrCleanupReason(csr, now);
    if (!reason) continue;
    const name = String(csr.metadata?.name);
    try {
      await api.request('DELETE', csrPath(name), { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: csr.metadata?.uid } } });
      deleted.push(name);
      logger.info({ csr: name, reason }, 'cleaned up certificate signing request');
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) continue;
      logger.warn({ csr: name, err: (err as Error).message }, 'could not delete certificate signing request');
    }
  }
  return deleted;
}

/** Configuration of the cleaner. */
export interface CsrCleanerConfig {
  readonly pollingIntervalSeconds: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link CsrCleanerConfig}. */
export const CSR_CLEANER_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pollingIntervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 3600, description: 'Time between passes (Kubernetes: one hour).' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** Waits `ms` or until `signal` aborts; resolves false when aborted. */
function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The CSR cleaner plugin. */
export const csrCleanerControllerPlugin = definePlugin({
  id: CSR_CLEANER_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'CSR cleaner: deletes certificate signing requests issued, denied or failed over an hour ago, pending over a day, or whose certificate has expired.',
  configSchema: CSR_CLEANER_CONFIG_SCHEMA,
  async start(handle, config: CsrCleanerConfig, signal) {
    const csrs = handle.api.informer<Csr>(CSR_PATH);
    csrs.run();
    await csrs.waitForSync(signal);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      do {
        await cleanCsrs(handle.api, csrs, handle.logger);
      } while (await delay(config.pollingIntervalSeconds * 1000, leading));
    });
  },
});
