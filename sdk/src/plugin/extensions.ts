import type { PluginKind, ProviderKind } from './kinds.js';
import type { Admission, Authenticator, Authorizer } from '../security/contracts.js';
import type { SchedulerPluginFactory } from '../scheduler/framework.js';
import type { ContainerRuntime } from '../runtime/cri.js';

/**
 * The base of every implementation a provider plugin hands to the kernel.
 *
 * The kernel calls {@link Extension.close} once, after the plugin's `start` has settled, when the
 * plugin stops or is restarted; a consumer must not call it.
 */
export interface Extension {
  /** Releases what the implementation holds (connections, sockets). Optional; never called twice. */
  close?(): Promise<void> | void;
}

/**
 * The contract of a kind whose extension point is not published yet: any object, optionally
 * closable. Publishing the kind's interface replaces it in {@link KindContracts}.
 */
export type OpenContract = Extension & object;

/**
 * What a provider of each kind hands over. Each extension point narrows its entry to its own
 * contract as it is published (for example `container-runtime` to a CRI-shaped runtime); until
 * then a kind's contract is an {@link OpenContract}.
 *
 * Service kinds (`scheduler`, `controller`) provide nothing and map to `never`.
 */
export interface KindContracts {
  authenticator: Authenticator;
  authorizer: Authorizer;
  admission: Admission;
  'container-runtime': ContainerRuntime;
  'csi-driver': OpenContract;
  'cloud-provider': OpenContract;
  'service-proxy': OpenContract;
  'scheduler-plugin': SchedulerPluginFactory & Extension;
  scheduler: never;
  controller: never;
}

/** The implementation a provider of kind `K` hands over. */
export type ContractOf<K extends PluginKind> = KindContracts[K];

/**
 * A read-only view of the implementations provided so far, keyed by the providing plugin's id.
 *
 * The view is live: a provider that restarts replaces its entry, one that stops removes it. A kind
 * nobody provides yields an empty map, never an error (consumers decide whether that is fatal).
 */
export type ExtensionLookup = <K extends ProviderKind>(kind: K) => ReadonlyMap<string, ContractOf<K>>;
