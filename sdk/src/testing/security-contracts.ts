import assert from 'node:assert/strict';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import { isAuthenticator, type AuthenticationRequest, type Authenticator, type UserInfo } from '../security/contracts.js';
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
