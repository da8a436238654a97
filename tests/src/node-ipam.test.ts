import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** A Node manifest for `kubectl apply` (no agent: the object alone), optionally with a pod CIDR. */
const nodeYaml = (name: string, podCIDR?: string): string =>
  ['apiVersion: v1', 'kind: Node', 'metadata:', `  name: ${name}`, '  labels: { e2e.kubernel.io/suite: node-ipam }', ...(podCIDR ? ['spec:', `  podCIDR: ${podCIDR}`, `  podCIDRs: [${podCIDR}]`] : []), ''].join('\n');

/** The node IPAM controller of the default distribution (10.244.0.0/16, /24 per node), through the real kubectl. */
describe('node IPAM controller (default distribution, kubectl)', function () {
  this.timeout(120_000);
  let c: TestCluster;

  before(async function () {
    this.timeout(90_000);
    c = await startCluster();
  });

  after(async () => {
    await c?.stop();
  });

  const spec = async (name: string): Promise<Json> => (JSON.parse(await c.ok(['get', 'node', name, '-o', 'json'])) as Json).spec ?? {};
  const allocated = async (names: readonly string[]): Promise<Json[]> => {
    let specs: Json[] = [];
    await until(async () => {
      specs = await Promise.all(names.map(spec));
      return specs.every((s) => typeof s.podCIDR === 'string');
    }, 30_000, `pod CIDRs for ${names.join(', ')}`);
    return specs;
  };
  const inClusterRange = (cidr: string): boolean => /^10\.244\.(\d{1,3})\.0\/24$/.test(cidr) && Number(/^10\.244\.(\d+)/.exec(cidr)![1]) < 256;

  it('gives each new Node a distinct /24 of 10.244.0.0/16 in spec.podCIDR and spec.podCIDRs', async () => {
    await c.ok(['apply', '-f', '-'], ['ipam-1', 'ipam-2', 'ipam-3'].map((n) => nodeYaml(n)).join('---\n'));
    const specs = await allocated(['ipam-1', 'ipam-2', 'ipam-3']);
    for (const s of specs) {
      expect(inClusterRange(s.podCIDR), s.podCIDR).to.equal(true);
      expect(s.podCIDRs).to.deep.equal([s.podCIDR]);
    }
    expect(new Set(specs.map((s) => s.podCIDR)).size).to.equal(3);
    const columns = await c.ok(['get', 'nodes', '-l', 'e2e.kubernel.io/suite=node-ipam', '-o', 'custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR', '--no-headers']);
    expect(columns.trim().split('\n').map((l) => l.trim().split(/\s+/))).to.deep.equal(['ipam-1', 'ipam-2', 'ipam-3'].map((n, i) => [n, specs[i]!.podCIDR]));
  });

  it('leaves a Node created with a pod CIDR alone, and never hands that CIDR out again', async () => {
    // The lowest /24 nobody holds yet: the next one the allocator would pick.
    const taken = new Set((await allocated(['ipam-1', 'ipam-2', 'ipam-3'])).map((s) => s.podCIDR as string));
    let next = 0;
    while (taken.has(`10.244.${next}.0/24`)) next++;
    const manual = `10.244.${next}.0/24`;
    await c.ok(['apply', '-f', '-'], nodeYaml('ipam-manual', manual));
    await c.ok(['apply', '-f', '-'], ['ipam-4', 'ipam-5'].map((n) => nodeYaml(n)).join('---\n'));
    const [four, five] = await allocated(['ipam-4', 'ipam-5']);
    expect([four!.podCIDR, five!.podCIDR]).to.not.include(manual);
    expect(await spec('ipam-manual')).to.deep.include({ podCIDR: manual, podCIDRs: [manual] });
    const all = [...taken, manual, four!.podCIDR, five!.podCIDR];
    expect(new Set(all).size).to.equal(all.length);
  });

  it('reuses the CIDR of a deleted Node for the next one', async () => {
    const freed = (await spec('ipam-2')).podCIDR as string;
    await c.ok(['delete', 'node', 'ipam-2']);
    // The allocator hands out the lowest free CIDR: the freed one, once the delete is seen.
    await c.ok(['apply', '-f', '-'], nodeYaml('ipam-6'));
    const [six] = await allocated(['ipam-6']);
    if (six!.podCIDR !== freed) {
      // The create raced the delete to the controller: the next Node gets the freed CIDR.
      await c.ok(['apply', '-f', '-'], nodeYaml('ipam-7'));
      const [seven] = await allocated(['ipam-7']);
      expect(seven!.podCIDR).to.equal(freed);
    } else {
      expect(six!.podCIDRs).to.deep.equal([freed]);
    }
    const names = ['ipam-1', 'ipam-3', 'ipam-4', 'ipam-5', 'ipam-6', 'ipam-manual'];
    const cidrs = (await Promise.all(names.map(spec))).map((s) => s.podCIDR as string);
    expect(new Set(cidrs).size).to.equal(cidrs.length);
  });
});
