import type { AuthorizationAttributes, NonResourceRule, ResourceRule, UserInfo } from '@kubernel/sdk';
import type { Obj, ResourceDef, ReviewContext } from '../resource.js';
import { badRequest, invalid } from '../status.js';
import { required } from './rules.js';

/** The answer of the authorizer chain for `attributes`, as a SubjectAccessReviewStatus. */
async function accessStatus(ctx: ReviewContext, user: UserInfo, spec: Obj, namespace: string | undefined): Promise<Obj> {
  const r = spec.resourceAttributes as Obj | undefined;
  const n = spec.nonResourceAttributes as Obj | undefined;
  if (!r && !n) throw invalid('SubjectAccessReview', 'authorization.k8s.io', '', [required('spec.resourceAttributes', 'exactly one of nonResourceAttributes or resourceAttributes must be specified')]);
  if (r && n) throw invalid('SubjectAccessReview', 'authorization.k8s.io', '', [required('spec.resourceAttributes', 'cannot be specified in combination with nonResourceAttributes')]);
  const attributes: AuthorizationAttributes = r
    ? {
        user,
        verb: String(r.verb ?? ''),
        isResourceRequest: true,
        path: '',
        apiGroup: String(r.group ?? ''),
        apiVersion: String(r.version ?? ''),
        namespace: namespace ?? String(r.namespace ?? ''),
        resource: String(r.resource ?? ''),
        subresource: String(r.subresource ?? ''),
        name: String(r.name ?? ''),
      }
    : { user, verb: String(n!.verb ?? ''), isResourceRequest: false, path: String(n!.path ?? ''), apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '' };
  const d = await ctx.decide(attributes);
  return { allowed: d.decision === 'allow', ...(d.decision === 'deny' ? { denied: true } : {}), ...(d.reason ? { reason: d.reason } : {}) };
}

const review = (o: Obj, status: Obj): Obj => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { ...(o.metadata ?? {}), creationTimestamp: null }, spec: o.spec, status });

function userFromSpec(spec: Obj): UserInfo {
  if (!spec.user && !(Array.isArray(spec.groups) && spec.groups.length > 0)) {
    throw invalid('SubjectAccessReview', 'authorization.k8s.io', '', [required('spec.user', 'at least one of user or group must be specified')]);
  }
  return { username: String(spec.user ?? ''), groups: Array.isArray(spec.groups) ? spec.groups.map(String) : [], ...(spec.uid ? { uid: String(spec.uid) } : {}), ...(spec.extra ? { extra: spec.extra as Record<string, string[]> } : {}) };
}

function reviewDef(group: string, kind: string, plural: string, namespaced: boolean, run: ResourceDef['review']): ResourceDef {
  return {
    group,
    version: 'v1',
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    definition: `io.k8s.api.${group.replace(/\.k8s\.io$/, '')}.v1.${kind}`,
    verbs: ['create'],
    review: run,
  };
}

/**
 * The review resources: create-only, never stored, answered from the request's identity and the
 * authorizer chain (what `kubectl auth whoami` and `kubectl auth can-i [--list]` use).
 */
export const REVIEWS: ResourceDef[] = [
  reviewDef('authentication.k8s.io', 'TokenReview', 'tokenreviews', false, async (o, ctx) => {
    const token = (o.spec as Obj | undefined)?.token;
    if (typeof token !== 'string' || token === '') throw invalid('TokenReview', 'authentication.k8s.io', '', [required('spec.token')]);
    const result = await ctx.authenticateToken(token);
    if ('error' in result) return review(o, { authenticated: false, user: {}, error: result.error });
    const u = result.user;
    return review(o, { authenticated: true, user: { username: u.username, ...(u.uid ? { uid: u.uid } : {}), groups: u.groups, ...(u.extra ? { extra: u.extra } : {}) } });
  }),
  reviewDef('authentication.k8s.io', 'SelfSubjectReview', 'selfsubjectreviews', false, async (o, ctx) =>
    review(o, { userInfo: { username: ctx.user.username, ...(ctx.user.uid ? { uid: ctx.user.uid } : {}), groups: ctx.user.groups, ...(ctx.user.extra ? { extra: ctx.user.extra } : {}) } }),
  ),
  reviewDef('authorization.k8s.io', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, async (o, ctx) => review(o, await accessStatus(ctx, ctx.user, (o.spec ?? {}) as Obj, undefined))),
  reviewDef('authorization.k8s.io', 'SubjectAccessReview', 'subjectaccessreviews', false, async (o, ctx) => {
    const spec = (o.spec ?? {}) as Obj;
    return review(o, await accessStatus(ctx, userFromSpec(spec), spec, undefined));
  }),
  reviewDef('authorization.k8s.io', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', true, async (o, ctx, namespace) => {
    const spec = (o.spec ?? {}) as Obj;
    const ns = (spec.resourceAttributes as Obj | undefined)?.namespace;
    if (spec.nonResourceAttributes) throw invalid('LocalSubjectAccessReview', 'authorization.k8s.io', '', [required('spec.nonResourceAttributes', 'disallowed on this kind of request')]);
    if (ns !== undefined && ns !== namespace) throw badRequest(`spec.resourceAttributes.namespace must match metadata.namespace: ${String(ns)} != ${String(namespace)}`);
    return review(o, await accessStatus(ctx, userFromSpec(spec), spec, namespace));
  }),
  reviewDef('authorization.k8s.io', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', false, async (o, ctx) => {
    const namespace = String((o.spec as Obj | undefined)?.namespace ?? '');
    const rules = await ctx.rulesFor(ctx.user, namespace);
    const clean = (r: ResourceRule): Obj => ({ verbs: r.verbs, apiGroups: r.apiGroups, resources: r.resources, ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) });
    return review(o, {
      resourceRules: rules.resourceRules.map(clean),
      nonResourceRules: rules.nonResourceRules.map((r: NonResourceRule) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs })),
      incomplete: rules.incomplete,
      ...(rules.evaluationError ? { evaluationError: rules.evaluationError } : {}),
    });
  }),
];
