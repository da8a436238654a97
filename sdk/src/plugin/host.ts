import type { Logger } from 'pino';
import type { PluginDefinition } from './define-plugin.js';
import { PluginContractError } from './errors.js';
import type { Extension, ExtensionLookup } from './extensions.js';
import type { AnyHandle, Role } from './handle.js';
import { isProviderKind, type ProviderKind } from './kinds.js';
import { isAdmission, isAuthenticator, isAuthorizer } from '../security/contracts.js';
import { isSchedulerPluginFactory } from '../scheduler/framework.js';
import { CONTAINER_RUNTIME_METHODS, isContainerRuntime } from '../runtime/cri.js';
import type { Metrics } from './metrics.js';
import type { ApiClient } from '../client/api-client.js';

/** What a host (the kernel, the test kit) supplies to build a plugin's handle. */
export interface HandleHost {
  readonly role: Role;
  readonly logger: Logger;
  readonly dataDir: string;
  readonly metrics: Metrics;
  readonly attempt: number;
  readonly extensions: ExtensionLookup;
  /** The process's API client, when it has a connection to an API server. */
  readonly api?: ApiClient;
  /** Called once, when the plugin says it is ready (services) or provides its implementation. */
  onReady(implementation: Extension | undefined): void;
}

/** Kinds whose contract is published, with the check `provide()` applies. */
const CONTRACT_GUARDS: Partial<Record<ProviderKind, { check: (v: unknown) => boolean; needs: string }>> = {
  authenticator: { check: isAuthenticator, needs: 'it needs authenticate(request)' },
  authorizer: { check: isAuthorizer, needs: 'it needs authorize(attributes) (and rulesFor, if present, must be a function)' },
  admission: { check: isAdmission, needs: 'it needs admit(request) and/or validate(request) (and handles, if present, must be a function)' },
  'container-runtime': { check: isContainerRuntime, needs: `it needs the CRI RuntimeService and ImageService methods (${CONTAINER_RUNTIME_METHODS.join(', ')}); containerStats, listContainerStats and close are optional functions` },
  'scheduler-plugin': { check: isSchedulerPluginFactory, needs: 'it needs a framework name and create(args, handle)' },
};

/**
 * Builds the handle for one start attempt of `definition`. For hosts only; plugins receive theirs.
 *
 * The handle enforces the kind's shape at run time too (for plugins written in JavaScript):
 * `ready()` on a provider and `provide()` on a service throw {@link PluginContractError}.
 */
export function createPluginHandle<C>(definition: PluginDefinition, config: C, host: HandleHost): AnyHandle<C> {
  const { id, kind, version } = definition;
  const provider = isProviderKind(kind);
  let done = false;
  return Object.freeze({
    plugin: Object.freeze({ id, kind, version }),
    role: host.role,
    logger: host.logger,
    config: config as Readonly<C>,
    dataDir: host.dataDir,
    metrics: host.metrics,
    attempt: host.attempt,
    extensions: host.extensions,
    get api(): ApiClient {
      if (!host.api) throw new PluginContractError(id, 'api', 'this process has no connection to an API server (pass one to the host, or startPlugin({ api }) in tests)');
      return host.api;
    },
    ready(): void {
      if (provider) throw new PluginContractError(id, 'ready', `a ${kind} plugin becomes ready by calling provide(implementation), not ready()`);
      if (done) return;
      done = true;
      host.onReady(undefined);
    },
    provide(implementation: Extension): void {
      if (!provider) throw new PluginContractError(id, 'provide', `a ${kind} plugin provides nothing; call ready() instead`);
      if (done) throw new PluginContractError(id, 'provide', 'was called more than once in one start');
      if (typeof implementation !== 'object' || implementation === null) {
        throw new PluginContractError(id, 'provide', 'needs an implementation object');
      }
      const guard = CONTRACT_GUARDS[kind as ProviderKind];
      if (guard && !guard.check(implementation)) throw new PluginContractError(id, 'provide', `the implementation is not a ${kind}: ${guard.needs}`);
      done = true;
      host.onReady(implementation);
    },
  });
}
