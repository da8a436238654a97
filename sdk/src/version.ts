/**
 * The version of this copy of `@kubernel/sdk` (kept equal to its package.json version by a unit test).
 *
 * A plugin declares the SDK range it was built against (`sdk: '^1.0.0'`); the kernel refuses a
 * plugin whose range this version does not satisfy.
 */
export const SDK_VERSION = '1.0.0';
