import type { Role } from '@kubernel/sdk';
import type { KernelSettings } from './distribution.js';

/** What one kernel runs and how it supervises. */
export interface KernelOptions {
  /** The roles whose plugins this process runs (`up` runs both). */
  readonly roles: readonly Role[];
  /** Root of the process's state; each plugin gets `<dataDir>/plugins/<id>`. */
  readonly dataDir: string;
  /** Timeouts and back-off. */
  readonly settings: KernelSettings;
}
