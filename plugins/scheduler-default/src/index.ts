/**
 * `@kubernel/plugin-scheduler-default`: the default scheduler (kind `scheduler`) and the
 * scheduling framework plugins (kind `scheduler-plugin`) its default profile is built from.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from '@kubernel/sdk';

const plugins: PluginDefinition[] = [];
export default plugins;
