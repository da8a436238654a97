/**
 * The error every plugin-related refusal is reported with: it names the plugin, the field at fault
 * and the reason, so a person can fix the distribution file or the plugin without reading code.
 *
 * `field` is a dotted name for definition fields (`sdk`, `configSchema`) and a JSON pointer for
 * config fields (`config/port`, `config/profiles/0/name`).
 */
export class PluginError extends Error {
  override readonly name = 'PluginError';

  /**
   * @param plugin the plugin id (or, before the id is known, the package or path it came from)
   * @param field the field at fault, empty when the plugin as a whole is at fault
   * @param reason what is wrong, in a sentence without a trailing period
   */
  constructor(
    readonly plugin: string,
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`plugin "${plugin}": ${field ? `${field}: ` : ''}${reason}`, options);
  }
}

/** Thrown when a plugin breaks its contract at run time (for example calls `provide` twice). */
export class PluginContractError extends PluginError {}

/** A short, single-line description of any thrown value, for logs and messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
