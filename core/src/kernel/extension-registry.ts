import type { ContractOf, Extension, ExtensionLookup, ProviderKind } from '@kubernel/sdk';
import { injectable } from 'inversify';

/**
 * The implementations provider plugins have handed over, by kind and plugin id. Consumers read
 * live views through {@link ExtensionRegistry.lookup}; a kind nobody provides is an empty map.
 */
@injectable()
export class ExtensionRegistry {
  private readonly byKind = new Map<ProviderKind, Map<string, Extension>>();

  /** Records `implementation` as what `pluginId` provides for `kind`, replacing an earlier one. */
  set(kind: ProviderKind, pluginId: string, implementation: Extension): void {
    this.view(kind).set(pluginId, implementation);
  }

  /** Forgets what `pluginId` provided for `kind` (it stopped or is restarting). */
  delete(kind: ProviderKind, pluginId: string): void {
    this.byKind.get(kind)?.delete(pluginId);
  }

  /** The lookup function handed to plugins. */
  readonly lookup: ExtensionLookup = <K extends ProviderKind>(kind: K) =>
    this.view(kind) as unknown as ReadonlyMap<string, ContractOf<K>>;

  private view(kind: ProviderKind): Map<string, Extension> {
    let map = this.byKind.get(kind);
    if (!map) {
      map = new Map();
      this.byKind.set(kind, map);
    }
    return map;
  }
}
