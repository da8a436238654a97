import assert from 'node:assert/strict';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import { isDeepStrictEqual } from 'node:util';
import {
  AdmissionDenied,
  isAdmission,
  isAuthenticator,
  isAuthorizer,
  type Admission,
  type AdmissionRequest,
  type ApiObject,
  type AuthenticationRequest,
  type Authenticator,
  type AuthorizationAttributes,
  type UserInfo,
} from '../security/contracts.js';
import { admissionRequest } from './admission.js';
import { describePluginContract, type PluginContractOptions } from './plugin-contract.js';
import { startPlugin, type RunningPlugin } from './harness.js';

/** Options of {@link describeAuthenticatorContract}. */
export interface AuthenticatorContractOptions extends PluginContractOptions {
  /** Requests the authenticator must accept, with the user it must return (extra groups allowed). */
  readonly accepts: readonly { readonly request: AuthenticationRequest; readonly user: Pick<UserInfo, 'username'> & Partial<UserInfo> }[];
  /** Requests carrying credentials of its kind that it must refuse with `{error}` or pass on with `undefined` (never a user). */
  readonly refuses?: readonly AuthenticationRequest[];
}

/** Hostile and malformed requests no authenticator may throw on or accept. */
const HOSTILE: readonly AuthenticationRequest[] = [
  { headers: {} },
  { headers: { authorization: '' } },
  { headers: { authorization: 'Bearer' } },
  { headers: { authorization: 'Bearer ' } },
  { headers: { authorization: 'Basic Zm9vOmJhcg==' } },
  { headers: { authorization: `Bearer ${'x'.repeat(100_000)}` } },
  { headers: { authorization: 'Bearer \u0000\uffff\ud800' } },
  { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' } },
  { headers: { authorization: ['Bearer a', 'Bearer b'] } },
  { headers: { 'x-remote-user': 'admin', 'impersonate-user': 'admin' } },
];

/**
 * The contract of the `authenticator` kind (run it at a spec file's top level, under mocha): the
 * general plugin contract, then: the provided object is an {@link Authenticator}; every `accepts`
 * case yields its user; a request without credentials yields `undefined`; hostile input (empty,
 * oversized, binary, unsigned JWTs, repeated headers, proxy headers) never throws and never yields a
 * user; every `refuses` case yields no user.
 */
export function describeAuthenticatorContract<C>(definition: PluginDefinition<'authenticator', C>, options: AuthenticatorContractOptions): void {
  describePluginContract(definition, options);
  const g = globalThis as { describe: Mocha.SuiteFunction; it: Mocha.TestFunction; before: Mocha.HookFunction; after: Mocha.HookFunction };
  g.describe(`authenticator contract: ${definition.id}`, () => {
    let running: RunningPlugin | undefined;
    let authenticator: Authenticator;
    g.before(async () => {
      running = startPlugin(definition, { ...(options.config !== undefined ? { config: options.config } : {}) });
      const impl = await running.ready;
      assert.ok(isAuthenticator(impl), 'the provided implementation is not an Authenticator');
      authenticator = impl;
    });
    g.after(async () => {
      await running?.stop();
    });

    g.it('authenticates each accepted request as its user', async () => {
      for (const { request, user } of options.accepts) {
        const result = await authenticator.authenticate(request);
        assert.ok(result && 'user' in result, `expected a user for ${JSON.stringify(request).slice(0, 200)}, got ${JSON.stringify(result)}`);
        assert.equal(result.user.username, user.username);
        if (user.uid !== undefined) assert.equal(result.user.uid, user.uid);
        for (const group of user.groups ?? []) assert.ok(result.user.groups.includes(group), `group ${group} missing from ${JSON.stringify(result.user.groups)}`);
      }
    });

    g.it('passes on a request without credentials', async () => {
      assert.equal(await authenticator.authenticate({ headers: {} }), undefined);
    });

    g.it('never throws on, nor accepts, hostile or refused requests', async () => {
      for (const request of [...HOSTILE, ...(options.refuses ?? [])]) {
        let result;
        try {
          result = await authenticator.authenticate(request);
        } catch (err) {
          assert.fail(`threw on ${JSON.stringify(request).slice(0, 120)}: ${String(err)}`);
        }
        assert.ok(result === undefined || 'error' in result, `accepted ${JSON.stringify(request).slice(0, 120)} as ${JSON.stringify(result)}`);
      }
    });
  });
}

type MochaGlobals = { describe: Mocha.SuiteFunction; it: Mocha.TestFunction; before: Mocha.HookFunction; after: Mocha.HookFunction };

/** Starts the plugin once for a suite and hands its implementation to the tests. */
function providedBy<T, K extends 'admission' | 'authorizer', C>(g: MochaGlobals, definition: PluginDefinition<K, C>, options: PluginContractOptions, check: (v: unknown) => v is T, what: string): () => T {
  let running: RunningPlugin | undefined;
  let impl: T | undefined;
  g.before(async function () {
    this.timeout((options.startTimeoutMs ?? 10_000) + 2_000);
    running = startPlugin(definition, { ...options });
    const provided = await running.ready;
    assert.ok(check(provided), `the provided implementation is not an ${what}`);
    impl = provided;
  });
  g.after(async () => {
    await running?.stop();
    running?.host.dispose();
  });
  return () => impl!;
}

/** What an admission case must end in. */
export type AdmissionExpectation =
  | { readonly allowed: true; /** Checks the object after every admit and validate ran (mutations). */ readonly object?: (object: ApiObject | undefined) => void }
  | { readonly denied: number; /** Text the refusal's message must contain. */ readonly message?: string | RegExp };

/** One request an admission plugin must decide as expected. */
export interface AdmissionCase {
  readonly name: string;
  /** Built with {@link admissionRequest} (fresh per run, as steps may mutate it). */
  readonly request: () => AdmissionRequest;
  readonly expect: AdmissionExpectation;
}

/** Options of {@link describeAdmissionContract}. */
export interface AdmissionContractOptions extends PluginContractOptions {
  /** Requests with their expected outcome (allowed, with the mutated object, or denied with a code). */
  readonly cases: readonly AdmissionCase[];
  /**
   * Malformed requests of the kinds the plugin handles, added to the built-in hostile set: each may
   * be allowed or denied with an {@link AdmissionDenied}, never throw anything else.
   */
  readonly hostile?: readonly (() => AdmissionRequest)[];
}

/** Runs every admit, then every validate, as the API server does for one step. */
async function runAdmission(step: Admission, request: AdmissionRequest): Promise<{ denied?: AdmissionDenied }> {
  if (step.handles && !step.handles(request)) return {};
  try {
    await step.admit?.(request);
    if (step.validate) {
      const before = structuredClone(request.object);
      await step.validate(request);
      assert.ok(isDeepStrictEqual(before, request.object), 'validate() changed the object: only admit() may mutate');
    }
    return {};
  } catch (err) {
    if (err instanceof AdmissionDenied) return { denied: err };
    throw err;
  }
}

const HOSTILE_OBJECTS: readonly (ApiObject | undefined)[] = [
  undefined,
  {},
  { metadata: { name: 'x' } },
  { kind: 'Pod', metadata: { name: 'x', namespace: 'default' }, spec: 'not an object' } as unknown as ApiObject,
  { kind: 'Pod', metadata: { name: 'x', namespace: 'default' }, spec: { containers: 'nope', volumes: [null, 1, 'x'] } },
  { kind: 'Pod', metadata: { name: 'x', namespace: 'default', labels: null, annotations: [] } as unknown as ApiObject['metadata'], spec: { containers: [null, { name: 5, resources: { requests: { cpu: 'lots' } }, securityContext: 'x' }] } },
  { kind: 'Pod', metadata: { name: 'x', namespace: 'default' }, spec: { containers: Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, image: 'i' })) } },
  { kind: 'PersistentVolumeClaim', metadata: { name: 'x', namespace: 'default' }, spec: { resources: { requests: { storage: { big: true } } } } },
  { kind: 'Namespace', metadata: { name: 'x', labels: { 'pod-security.kubernetes.io/enforce': 'nonsense' } } },
];

/**
 * The contract of the `admission` kind (a mocha suite at a spec file's top level): the general
 * plugin contract, then: the provided object is an {@link Admission}; each case ends as expected
 * (allowed with the expected mutations, or refused with its code and message); `validate` never
 * changes the object; `admit` is idempotent (running the step again over its own output changes
 * nothing, as webhook reinvocation assumes); malformed and hostile requests (missing objects,
 * wrong types, huge lists) are allowed or refused with {@link AdmissionDenied}, never answered
 * with another error, and `handles` never throws.
 */
export function describeAdmissionContract<C>(definition: PluginDefinition<'admission', C>, options: AdmissionContractOptions): void {
  describePluginContract(definition, options);
  const g = globalThis as unknown as MochaGlobals;
  g.describe(`admission contract: ${definition.id}`, () => {
    const step = providedBy(g, definition, options, isAdmission, 'Admission');

    for (const c of options.cases) {
      g.it(`decides: ${c.name}`, async () => {
        const request = c.request();
        const { denied } = await runAdmission(step(), request);
        if ('denied' in c.expect) {
          assert.ok(denied, `expected a refusal with ${c.expect.denied}, but the request was allowed`);
          assert.equal(denied.code, c.expect.denied, `refused with ${denied.code} (${denied.message}), expected ${c.expect.denied}`);
          const m = c.expect.message;
          if (m !== undefined) assert.ok(typeof m === 'string' ? denied.message.includes(m) : m.test(denied.message), `message ${JSON.stringify(denied.message)} does not match ${String(m)}`);
        } else {
          assert.equal(denied, undefined, `expected the request to be allowed, refused: ${denied?.message}`);
          c.expect.object?.(request.object);
        }
      });
    }

    g.it('admits idempotently: a second pass over its own output changes nothing', async () => {
      const s = step();
      if (!s.admit) return;
      for (const c of options.cases.filter((x) => 'allowed' in x.expect)) {
        const request = c.request();
        if (s.handles && !s.handles(request)) continue;
        await s.admit(request);
        const once = structuredClone(request.object);
        await s.admit(request);
        assert.ok(isDeepStrictEqual(once, request.object), `${c.name}: a second admit changed the object`);
      }
    });

    g.it('never throws anything but AdmissionDenied on malformed or hostile requests', async () => {
      const s = step();
      const requests: AdmissionRequest[] = [];
      for (const object of HOSTILE_OBJECTS) {
        for (const operation of ['CREATE', 'UPDATE', 'DELETE'] as const) {
          requests.push(admissionRequest({ operation, object: structuredClone(object), oldObject: operation === 'CREATE' ? undefined : structuredClone(object) }));
        }
      }
      for (const make of options.hostile ?? []) requests.push(make());
      for (const request of requests) {
        try {
          await runAdmission(s, request);
        } catch (err) {
          assert.fail(`threw ${String(err)} on ${request.operation} ${JSON.stringify(request.object)?.slice(0, 160)}`);
        }
      }
    });
  });
}

/** Options of {@link describeAuthorizerContract}. */
export interface AuthorizerContractOptions extends PluginContractOptions {
  /** Requests the authorizer must allow. */
  readonly allows: readonly AuthorizationAttributes[];
  /** Requests it must not allow (deny or no opinion). */
  readonly refuses: readonly AuthorizationAttributes[];
}

/** Builds authorization attributes for tests: a resource request unless `path` is given without `resource`. */
export function authorizationAttributes(over: Partial<AuthorizationAttributes> & { user: UserInfo; verb: string }): AuthorizationAttributes {
  const isResourceRequest = over.isResourceRequest ?? over.resource !== undefined;
  return { isResourceRequest, path: '', apiGroup: '', apiVersion: 'v1', namespace: '', resource: '', subresource: '', name: '', ...over };
}

const HOSTILE_ATTRIBUTES: readonly AuthorizationAttributes[] = [
  authorizationAttributes({ user: { username: '', groups: [] }, verb: '' }),
  authorizationAttributes({ user: { username: 'x'.repeat(100_000), groups: ['\u0000'] }, verb: 'get', resource: 'pods', namespace: '../../etc' }),
  authorizationAttributes({ user: { username: 'system:node:', groups: ['system:nodes'] }, verb: 'update', resource: 'nodes', name: '' }),
  authorizationAttributes({ user: { username: 'mallory', groups: [], extra: { 'authentication.kubernetes.io/pod-name': ['p'] } }, verb: '*', resource: '*', apiGroup: '*' }),
  authorizationAttributes({ user: { username: 'mallory', groups: [] }, verb: 'get', path: '/../../../etc/passwd' }),
];

/**
 * The contract of the `authorizer` kind: the general plugin contract, then: the provided object is
 * an {@link Authorizer}; each `allows` case is allowed and each `refuses` case is not; decisions are
 * one of allow, deny and no-opinion; hostile attributes (empty or huge names, path traversal,
 * wildcards asked for) never throw and are never allowed; `rulesFor`, when present, answers
 * well-formed rules that cover every `allows` case of the same user.
 */
export function describeAuthorizerContract<C>(definition: PluginDefinition<'authorizer', C>, options: AuthorizerContractOptions): void {
  describePluginContract(definition, options);
  const g = globalThis as unknown as MochaGlobals;
  g.describe(`authorizer contract: ${definition.id}`, () => {
    const authorizer = providedBy(g, definition, options, isAuthorizer, 'Authorizer');
    const decide = async (a: AuthorizationAttributes): Promise<string> => {
      const d = await authorizer().authorize(a);
      assert.ok(['allow', 'deny', 'no-opinion'].includes(d.decision), `unknown decision ${JSON.stringify(d)}`);
      return d.decision;
    };

    g.it('allows what it must', async () => {
      for (const a of options.allows) assert.equal(await decide(a), 'allow', `${a.user.username} ${a.verb} ${a.resource || a.path} ${a.namespace}/${a.name}`);
    });

    g.it('does not allow what it must refuse', async () => {
      for (const a of options.refuses) assert.notEqual(await decide(a), 'allow', `${a.user.username} ${a.verb} ${a.resource || a.path} ${a.namespace}/${a.name}`);
    });

    g.it('never throws on, nor allows, hostile attributes', async () => {
      for (const a of HOSTILE_ATTRIBUTES) {
        let d: string;
        try {
          d = await decide(a);
        } catch (err) {
          assert.fail(`threw on ${JSON.stringify(a).slice(0, 160)}: ${String(err)}`);
        }
        assert.notEqual(d, 'allow', `allowed ${JSON.stringify(a).slice(0, 160)}`);
      }
    });

    g.it('lists rules that cover what it allows (when it lists rules)', async () => {
      const z = authorizer();
      if (!z.rulesFor) return;
      for (const a of options.allows.filter((x) => x.isResourceRequest)) {
        const rules = await z.rulesFor(a.user, a.namespace);
        assert.ok(Array.isArray(rules.resourceRules) && Array.isArray(rules.nonResourceRules) && typeof rules.incomplete === 'boolean');
        const covered = rules.resourceRules.some(
          (r) =>
            (r.verbs.includes('*') || r.verbs.includes(a.verb)) &&
            (r.apiGroups.includes('*') || r.apiGroups.includes(a.apiGroup)) &&
            (r.resources.includes('*') || r.resources.includes(a.subresource ? `${a.resource}/${a.subresource}` : a.resource) || r.resources.includes(`*/${a.subresource}`) || (!!a.subresource && r.resources.includes(`${a.resource}/*`))) &&
            (!r.resourceNames?.length || r.resourceNames.includes(a.name)),
        );
        assert.ok(covered || rules.incomplete, `rulesFor(${a.user.username}, ${a.namespace}) does not cover ${a.verb} ${a.resource}`);
      }
    });
  });
}
