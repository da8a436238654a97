import type { ResourceDef } from '../resource.js';
import { APPS } from './apps.js';
import { CERTIFICATES } from './certificates.js';
import { CORE } from './core.js';
import { OTHERS } from './others.js';
import { REVIEWS } from './reviews.js';

/** Every built-in resource the API server serves. */
export const BUILTIN_RESOURCES: readonly ResourceDef[] = [...CORE, ...APPS, ...OTHERS, ...CERTIFICATES, ...REVIEWS];
