/**
 * Test helpers of the agent's volume and environment specs (not shipped: `*.spec*` files are
 * left out of the package).
 *
 * @module
 */
import type { V1ConfigMap, V1Secret, V1Service } from './core-v1.js';
import type { MountPoint, Mounter } from './mounter.js';
import { ObjectNotFoundError, type ServiceAccountToken, type ServiceAccountTokenRequest, type VolumeSources } from './pod-sources.js';

/** Base64 of a UTF-8 string. */
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** In-memory API objects by `ns/name`. */
export class FakeSources implements VolumeSources {
  readonly configMaps = new Map<string, V1ConfigMap>();
  readonly secrets = new Map<string, V1Secret>();
  readonly services = new Map<string, V1Service[]>();
  readonly calls: string[] = [];
  failServices = false;
  tokenAnswer: (req: ServiceAccountTokenRequest) => ServiceAccountToken = () => {
    throw new Error('no tokens here');
  };

  async getConfigMap(ns: string, name: string): Promise<V1ConfigMap> {
    this.calls.push(`configmap ${ns}/${name}`);
    const cm = this.configMaps.get(`${ns}/${name}`);
    if (!cm) throw new ObjectNotFoundError('configmap', name);
    return cm;
  }
  async getSecret(ns: string, name: string): Promise<V1Secret> {
    this.calls.push(`secret ${ns}/${name}`);
    const s = this.secrets.get(`${ns}/${name}`);
    if (!s) throw new ObjectNotFoundError('secret', name);
    return s;
  }
  async listServices(ns: string): Promise<readonly V1Service[]> {
    this.calls.push(`services ${ns}`);
    if (this.failServices) throw new Error('connection refused');
    return this.services.get(ns) ?? [];
  }
  async requestServiceAccountToken(ns: string, sa: string, req: ServiceAccountTokenRequest): Promise<ServiceAccountToken> {
    this.calls.push(`token ${ns}/${sa} ${req.audiences.join(',')} ${req.expirationSeconds} ${req.podName}/${req.podUid}`);
    return this.tokenAnswer(req);
  }
}


/** A mounter that only records (no root needed): mount points are kept in memory. */
export class FakeMounter implements Mounter {
  readonly table: MountPoint[] = [];
  readonly calls: string[] = [];

  async mount(source: string, target: string, fsType: string, options: readonly string[]): Promise<void> {
    this.calls.push(`mount ${fsType} ${options.join(',')} ${target}`);
    this.table.push({ mountPoint: target, fsType, source, options: 'rw', superOptions: options.join(',') });
  }
  async unmount(target: string): Promise<void> {
    this.calls.push(`umount ${target}`);
    const i = this.table.map((m) => m.mountPoint).lastIndexOf(target);
    if (i < 0) throw new Error(`umount: ${target}: not mounted.`);
    this.table.splice(i, 1);
  }
  async list(): Promise<MountPoint[]> {
    return [...this.table];
  }
}

/** A manual clock (ms since the epoch). */
export class FakeClock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}
