import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';
import { ApiError } from './status.js';
import { ProtobufDecoder } from './protobuf.js';

const DIR = fileURLToPath(new URL('../../generated/proto/', import.meta.url));

/** Encodes `object` of `type` the way client-go does: magic + runtime.Unknown{typeMeta, raw}. */
function encode(root: protobuf.Root, type: string, apiVersion: string, kind: string, object: Record<string, unknown>): Buffer {
  const t = root.lookupType(type);
  const raw = t.encode(t.fromObject(object)).finish();
  const unknown = root.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  const body = unknown.encode(unknown.fromObject({ typeMeta: { apiVersion, kind }, raw })).finish();
  return Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), Buffer.from(body)]);
}

describe('protobuf request bodies', () => {
  const decoder = new ProtobufDecoder();
  const root = (decoder as unknown as { root: protobuf.Root }).root;

  it('decodes a ConfigMap into its JSON form, dropping Go zero values of omitempty fields', () => {
    const body = encode(root, 'k8s.io.api.core.v1.ConfigMap', 'v1', 'ConfigMap', {
      metadata: { name: 'c1', namespace: '', generateName: '', generation: 0, labels: { a: 'b' }, creationTimestamp: { seconds: 0, nanos: 0 } },
      data: { k: 'v' },
      binaryData: { bin: Buffer.from('hi') },
    });
    expect(decoder.decode(body)).to.deep.equal({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c1', labels: { a: 'b' } }, data: { k: 'v' }, binaryData: { bin: 'aGk=' } });
  });

  it('keeps pointer fields even when zero, and converts int-or-string, quantities and times', () => {
    const body = encode(root, 'k8s.io.api.apps.v1.Deployment', 'apps/v1', 'Deployment', {
      metadata: { name: 'd', creationTimestamp: { seconds: 1700000000 } },
      spec: {
        replicas: 0,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: { type: 1, strVal: '25%' }, maxUnavailable: { type: 0, intVal: 1 } } },
        template: { spec: { containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: { string: '500m' } } } }] } },
      },
    });
    const o = decoder.decode(body) as { metadata: Record<string, unknown>; spec: Record<string, unknown> & { strategy: unknown; template: { spec: { containers: Array<Record<string, unknown>> } } } };
    expect(o.spec.replicas).to.equal(0);
    expect(o.metadata.creationTimestamp).to.equal('2023-11-14T22:13:20Z');
    expect(o.spec.strategy).to.deep.equal({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } });
    expect(o.spec.template.spec.containers[0]!.resources).to.deep.equal({ limits: { cpu: '500m' } });
  });

  it('refuses bodies without the magic number, malformed bodies and unknown types', () => {
    expect(() => decoder.decode(Buffer.from('{"a":1}'))).to.throw(ApiError).with.property('code', 400);
    expect(() => decoder.decode(Buffer.from([0x6b, 0x38, 0x73, 0x00, 0xff, 0xff, 0xff]))).to.throw(ApiError).with.property('code', 400);
    expect(() => decoder.decode(encode(root, 'k8s.io.api.core.v1.ConfigMap', 'example.com/v1', 'Widget', {}))).to.throw(ApiError).with.property('code', 415);
  });

  it('loads the definitions of Kubernetes 1.32', () => {
    expect(DIR).to.match(/generated\/proto\/$/);
    expect(() => root.lookupType('k8s.io.api.authentication.v1.TokenRequest')).to.not.throw();
  });
});
