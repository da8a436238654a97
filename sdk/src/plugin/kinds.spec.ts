import { expect } from 'chai';
import { isPluginKind, isProviderKind, KIND_INFO, PLUGIN_KINDS } from './kinds.js';

describe('plugin kinds', () => {
  it('are the closed set the architecture names, each documented', () => {
    expect([...PLUGIN_KINDS].sort()).to.deep.equal(
      ['admission', 'authenticator', 'authorizer', 'cloud-provider', 'container-runtime', 'controller', 'csi-driver', 'scheduler', 'scheduler-plugin', 'service-proxy'],
    );
    for (const k of PLUGIN_KINDS) expect(KIND_INFO[k].description, k).to.have.length.greaterThan(20);
    expect(isPluginKind('webhook')).to.equal(false);
  });

  it('services are exactly scheduler and controller, and start after every provider', () => {
    expect(PLUGIN_KINDS.filter((k) => !isProviderKind(k))).to.deep.equal(['scheduler', 'controller']);
    const maxProviderTier = Math.max(...PLUGIN_KINDS.filter(isProviderKind).map((k) => KIND_INFO[k].tier));
    expect(KIND_INFO.scheduler.tier).to.be.greaterThan(maxProviderTier);
    expect(KIND_INFO.controller.tier).to.be.greaterThan(maxProviderTier);
  });
});
