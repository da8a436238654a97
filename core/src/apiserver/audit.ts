import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { UserInfo } from '@kubernel/sdk';
import type { RequestInfo } from './request-info.js';

/** Audit levels, in increasing detail (audit.k8s.io/v1). */
export const AUDIT_LEVELS = ['None', 'Metadata', 'Request', 'RequestResponse'] as const;
export type AuditLevel = (typeof AUDIT_LEVELS)[number];

interface GroupResources {
  readonly group?: string;
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** One rule of an audit Policy; the first rule that matches a request sets its level. */
export interface AuditRule {
  readonly level: AuditLevel;
  readonly users?: readonly string[];
  readonly userGroups?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resources?: readonly GroupResources[];
  readonly namespaces?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** A parsed audit Policy. */
export interface AuditPolicy {
  readonly rules: readonly AuditRule[];
}

/**
 * Parses an audit Policy (audit.k8s.io/v1, YAML or JSON).
 * @throws {Error} naming the bad field
 */
export function parseAuditPolicy(text: string): AuditPolicy {
  const doc = parseYaml(text) as { kind?: string; rules?: Array<Record<string, unknown>> };
  if (!doc || typeof doc !== 'object' || doc.kind !== 'Policy') throw new Error(`kind: expected Policy, got ${JSON.stringify(doc?.kind)}`);
  if (!Array.isArray(doc.rules)) throw new Error('rules: a list is required');
  const rules = doc.rules.map((r, i) => {
    if (!AUDIT_LEVELS.includes(r.level as AuditLevel)) throw new Error(`rules[${i}].level: must be one of ${AUDIT_LEVELS.join(', ')}, got ${JSON.stringify(r.level)}`);
    for (const list of ['users', 'userGroups', 'verbs', 'namespaces', 'nonResourceURLs', 'resources']) {
      if (r[list] !== undefined && !Array.isArray(r[list])) throw new Error(`rules[${i}].${list}: must be a list`);
    }
    return r as unknown as AuditRule;
  });
  return { rules };
}

const listed = (list: readonly string[] | undefined, value: string): boolean => !list || list.length === 0 || list.includes(value);

/** The level the policy gives a request (None when no rule matches, as Kubernetes). */
export function levelFor(policy: AuditPolicy, user: UserInfo, info: RequestInfo): AuditLevel {
  for (const rule of policy.rules) {
    if (!listed(rule.users, user.username)) continue;
    if (rule.userGroups?.length && !user.groups.some((g) => rule.userGroups!.includes(g))) continue;
    if (!listed(rule.verbs, info.verb)) continue;
    if (info.isResourceRequest) {
      if (rule.nonResourceURLs?.length) continue;
      if (rule.namespaces?.length && !rule.namespaces.includes(info.namespace ?? '')) continue;
      if (rule.resources?.length) {
        const full = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
        const hit = rule.resources.some(
          (gr) =>
            (gr.group ?? '') === info.apiGroup &&
            (!gr.resources?.length || gr.resources.some((r) => r === full || r === info.resource || r === '*' || (r.startsWith('*/') && info.subresource === r.slice(2)))) &&
            (!gr.resourceNames?.length || gr.resourceNames.includes(info.name ?? '')),
        );
        if (!hit) continue;
      }
    } else {
      if (rule.resources?.length || rule.namespaces?.length) continue;
      if (rule.nonResourceURLs?.length && !rule.nonResourceURLs.some((u) => u === info.path || (u.endsWith('*') && info.path.startsWith(u.slice(0, -1))))) continue;
    }
    return rule.level;
  }
  return 'None';
}

/** What the API server collects about one request for its audit event. */
export interface AuditRecord {
  user?: UserInfo;
  requestObject?: unknown;
  responseObject?: unknown;
  decision?: string;
}

/** Writes audit events as JSON lines (audit.k8s.io/v1 Event, stage ResponseComplete). */
export class AuditLog {
  private readonly out: WriteStream | NodeJS.WritableStream;

  constructor(
    readonly policy: AuditPolicy,
    path: string,
  ) {
    this.out = path === '-' ? process.stdout : createWriteStream(path, { flags: 'a', mode: 0o600 });
  }

  /** The level of a request: decides what the server keeps for the event. */
  level(user: UserInfo, info: RequestInfo): AuditLevel {
    return levelFor(this.policy, user, info);
  }

  write(event: { level: AuditLevel; info: RequestInfo; uri: string; record: AuditRecord; code: number; sourceIP: string; userAgent: string | undefined; received: Date }): void {
    const { level, info, record } = event;
    if (level === 'None') return;
    const user = record.user ?? { username: 'system:anonymous', groups: ['system:unauthenticated'] };
    const line = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level,
      auditID: randomUUID(),
      stage: 'ResponseComplete',
      requestURI: event.uri,
      verb: info.verb,
      user: { username: user.username, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups, ...(user.extra ? { extra: user.extra } : {}) },
      sourceIPs: [event.sourceIP],
      ...(event.userAgent ? { userAgent: event.userAgent } : {}),
      ...(info.isResourceRequest
        ? {
            objectRef: {
              resource: info.resource,
              ...(info.namespace ? { namespace: info.namespace } : {}),
              ...(info.name ? { name: info.name } : {}),
              apiGroup: info.apiGroup,
              apiVersion: info.apiVersion,
              ...(info.subresource ? { subresource: info.subresource } : {}),
            },
          }
        : {}),
      responseStatus: { metadata: {}, code: event.code },
      ...(level !== 'Metadata' && record.requestObject !== undefined ? { requestObject: record.requestObject } : {}),
      ...(level === 'RequestResponse' && record.responseObject !== undefined ? { responseObject: record.responseObject } : {}),
      requestReceivedTimestamp: event.received.toISOString(),
      stageTimestamp: new Date().toISOString(),
      ...(record.decision ? { annotations: { 'authorization.k8s.io/decision': record.decision } } : {}),
    };
    this.out.write(`${JSON.stringify(line)}\n`);
  }

  /** Flushes and closes the log file. */
  close(): Promise<void> {
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => (this.out as WriteStream).end(resolve));
  }
}
