import { expect } from 'chai';
import pino from 'pino';
import type { Exchange } from './exchange.js';
import { endpointOf, isLongRunning, isNodeProxyRequest, NodeProxy, streamingRequestInfo } from './node-proxy.js';
import { requestInfo } from './request-info.js';
import type { Obj } from './resource.js';
import type { ApiError } from './status.js';

const info = (method: string, path: string) => requestInfo(method, path, new URLSearchParams());

/** An in-process exchange stand-in: records the answer. */
function localExchange(method = 'GET'): Exchange & { answer?: { status: number; body: string } } {
  const ex: Exchange & { answer?: { status: number; body: string } } = {
    method,
    url: '/',
    headers: {},
    remoteAddress: '',
    unsecured: false,
    clientCertificate: () => undefined,
    readBody: async () => Buffer.alloc(0),
    discardBody: () => undefined,
    headersSent: false,
    setHeader: () => undefined,
    reply(status, _headers, body) {
      ex.answer = { status, body };
    },
    end: () => undefined,
    stream: () => undefined,
    onClose: () => () => undefined,
  };
  return ex;
}

const pod = (containers: string[], nodeName?: string, init: string[] = []): Obj => ({
  metadata: { name: 'web-x', namespace: 'default' },
  spec: { ...(nodeName ? { nodeName } : {}), containers: containers.map((name) => ({ name })), initContainers: init.map((name) => ({ name })) },
});

describe('node proxy', () => {
  describe('request classification', () => {
    it('serves pods/log, exec, attach and portforward, nothing else', () => {
      expect(isNodeProxyRequest(info('GET', '/api/v1/namespaces/default/pods/web/log'))).to.equal(true);
      expect(isNodeProxyRequest(info('POST', '/api/v1/namespaces/default/pods/web/exec'))).to.equal(true);
      expect(isNodeProxyRequest(info('GET', '/api/v1/namespaces/default/pods/web/portforward'))).to.equal(true);
      expect(isNodeProxyRequest(info('GET', '/api/v1/namespaces/default/pods/web/status'))).to.equal(false);
      expect(isNodeProxyRequest(info('GET', '/apis/example.com/v1/namespaces/default/pods/web/log'))).to.equal(false);
    });

    it('authorizes the WebSocket GET of exec/attach/portforward as create, and log as get', () => {
      expect(streamingRequestInfo(info('GET', '/api/v1/namespaces/default/pods/web/exec')).verb).to.equal('create');
      expect(streamingRequestInfo(info('GET', '/api/v1/namespaces/default/pods/web/attach')).verb).to.equal('create');
      expect(streamingRequestInfo(info('POST', '/api/v1/namespaces/default/pods/web/portforward')).verb).to.equal('create');
      expect(streamingRequestInfo(info('GET', '/api/v1/namespaces/default/pods/web/log')).verb).to.equal('get');
      expect(streamingRequestInfo(info('GET', '/api/v1/namespaces/default/pods/web')).verb).to.equal('get');
    });

    it('counts them long-running (no flow-control seat), with watches', () => {
      expect(isLongRunning(info('GET', '/api/v1/namespaces/default/pods/web/log'))).to.equal(true);
      expect(isLongRunning(requestInfo('GET', '/api/v1/pods', new URLSearchParams('watch=true')))).to.equal(true);
      expect(isLongRunning(info('GET', '/api/v1/pods'))).to.equal(false);
    });
  });

  describe('endpointOf', () => {
    const node = (addresses: Array<[string, string]>, port?: number): Obj => ({
      metadata: { name: 'n' },
      status: { addresses: addresses.map(([type, address]) => ({ type, address })), ...(port !== undefined ? { daemonEndpoints: { kubeletEndpoint: { Port: port } } } : {}) },
    });
    it('takes the first address of the preferred types and the daemon endpoint port', () => {
      expect(endpointOf(node([['Hostname', 'n1'], ['InternalIP', '10.0.0.5']], 10250))).to.deep.equal({ host: '10.0.0.5', port: 10250 });
      expect(endpointOf(node([['Hostname', 'n1']], 12345))).to.deep.equal({ host: 'n1', port: 12345 });
      expect(endpointOf(node([['Hostname', 'n1'], ['InternalIP', '10.0.0.5']]), ['Hostname'])).to.deep.equal({ host: 'n1', port: 10250 });
      expect(endpointOf(node([]))).to.equal(undefined);
    });
  });

  describe('serve (errors before any agent is dialled)', () => {
    const objects = new Map<string, Obj>();
    const proxy = new NodeProxy({
      logger: pino({ level: 'silent' }),
      kubelet: { cert: 'unused', key: 'unused' },
      getObject: async (resource, namespace, name) => objects.get(`${resource}/${namespace ?? ''}/${name}`),
    });
    const failure = async (path: string, query = '', method = 'GET'): Promise<ApiError> => {
      const i = streamingRequestInfo(info(method, path));
      try {
        await proxy.serve(localExchange(method), i, new URLSearchParams(query));
      } catch (err) {
        return err as ApiError;
      }
      throw new Error('expected a failure');
    };

    it('404 for a missing pod', async () => {
      const e = await failure('/api/v1/namespaces/default/pods/nope/log');
      expect([e.code, e.reason, e.message]).to.deep.equal([404, 'NotFound', 'pods "nope" not found']);
    });

    it('400 when a pod of several containers is asked without one, or for one it lacks', async () => {
      objects.set('pods/default/web-x', pod(['a', 'b'], 'n1', ['setup']));
      const e = await failure('/api/v1/namespaces/default/pods/web-x/log');
      expect([e.code, e.message]).to.deep.equal([400, 'a container name must be specified for pod web-x, choose one of: [a b] or one of the init containers: [setup]']);
      const bad = await failure('/api/v1/namespaces/default/pods/web-x/log', 'container=zz');
      expect(bad.message).to.equal('container zz is not valid for pod web-x');
    });

    it('400 for a pod not yet on a node', async () => {
      objects.set('pods/default/pending', pod(['a']));
      const e = await failure('/api/v1/namespaces/default/pods/pending/exec', 'command=ls&stdout=true');
      expect([e.code, e.message]).to.deep.equal([400, 'pod pending does not have a host assigned']);
    });

    it('400 for exec without an upgradable connection (the in-process transport), 404 for a missing node', async () => {
      objects.set('pods/default/placed', pod(['a'], 'n1'));
      const noNode = await failure('/api/v1/namespaces/default/pods/placed/log');
      expect([noNode.code, noNode.message]).to.deep.equal([404, 'nodes "n1" not found']);
      objects.set('nodes//n1', { metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] } });
      const exec = await failure('/api/v1/namespaces/default/pods/placed/exec', 'command=ls&stdout=true', 'POST');
      expect([exec.code, exec.message]).to.deep.equal([400, 'pods/exec needs an upgraded HTTP connection (WebSocket or SPDY); the in-process transport cannot carry it']);
      expect((await failure('/api/v1/namespaces/default/pods/placed/log', 'follow=true')).message).to.match(/in-process transport/);
    });

    it('503 when no kubelet client certificate is configured', async () => {
      const bare = new NodeProxy({ logger: pino({ level: 'silent' }), getObject: async () => pod(['a'], 'n1') });
      let error: unknown;
      await bare.serve(localExchange(), info('GET', '/api/v1/namespaces/default/pods/web/log'), new URLSearchParams()).catch((e: unknown) => (error = e));
      expect((error as ApiError).code).to.equal(503);
    });
  });
});
