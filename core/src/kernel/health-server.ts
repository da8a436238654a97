import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from '@kubernel/sdk';

/** One named health check, as `/livez?verbose` and `/readyz?verbose` list them. */
export interface NamedCheck {
  /** `plugin/<id>`, `store`, ... */
  readonly name: string;
  /** False when the process needs a restart. */
  readonly live: boolean;
  /** False while the component cannot serve. */
  readonly ready: boolean;
  /** Why it is not live or not ready. */
  readonly reason?: string;
}

/** A running health and metrics endpoint. */
export interface HealthServer {
  /** The bound address (`host:port`). */
  readonly address: string;
  close(): Promise<void>;
}

function report(checks: readonly NamedCheck[], check: 'livez' | 'readyz', verbose: boolean): { ok: boolean; body: string } {
  const good = (c: NamedCheck): boolean => (check === 'livez' ? c.live : c.ready);
  const ok = checks.every(good);
  if (!verbose) return { ok, body: ok ? 'ok' : `${check} check failed` };
  const lines = checks.map((c) => (good(c) ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.reason ?? 'not ready'}`));
  lines.push(ok ? `${check} check passed` : `${check} check failed`);
  return { ok, body: lines.join('\n') + '\n' };
}

/**
 * Serves `/livez`, `/readyz`, `/healthz` (with `?verbose` per-check lines, as Kubernetes components
 * do) and `/metrics` over plain HTTP. Bind it to loopback: it carries no authentication. Once the
 * API server exists, it serves the same checks on its own port.
 */
export async function startHealthServer(options: {
  readonly host: string;
  readonly port: number;
  /** The checks, evaluated on every request. */
  readonly checks: () => readonly NamedCheck[];
  readonly registry: Registry;
}): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (url.pathname) {
      case '/livez':
      case '/healthz':
      case '/readyz': {
        const check = url.pathname === '/readyz' ? 'readyz' : 'livez';
        const { ok, body } = report(options.checks(), check, url.searchParams.has('verbose'));
        return send(ok ? 200 : 500, 'text/plain; charset=utf-8', body);
      }
      case '/metrics':
        options.registry.metrics().then(
          (text) => send(200, options.registry.contentType, text),
          (err: Error) => send(500, 'text/plain', `${err.message}\n`),
        );
        return;
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    address: `${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
