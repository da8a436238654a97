import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** tests/fixtures. */
export const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
/** The kubernel command's entry point. */
export const KUBERNEL_BIN = fileURLToPath(new URL('../../../core/bin/kubernel.js', import.meta.url));
