import 'reflect-metadata';
import { createRequire } from 'node:module';
import { ROLES, SDK_VERSION, type Role } from '@kubernel/sdk';
import { Command, CommanderError, Option } from 'commander';
import { createLogger } from '../logging.js';
import { DEFAULT_DISTRIBUTION, defaultDataDir } from './paths.js';
import type { RunOptions } from './run-command.js';

/**
 * Exit codes scripts can rely on: 0 success; 1 the command ran and failed (invalid distribution,
 * plugin start-up failure, a plugin abandoned at shutdown); 2 invalid usage; 130 a second
 * interrupt forced the exit.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
const out = (s: string): void => void process.stdout.write(s);
const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);

/** Health ports follow the Kubernetes components': controller manager 10257, kubelet 10248. */
function runOptions(cmd: Command, healthPort: number): Command {
  return cmd
    .option('--data-dir <dir>', 'directory for the node\'s state', defaultDataDir())
    .option('--distribution <file>', 'distribution file listing the plugins per role', DEFAULT_DISTRIBUTION)
    .option('--healthz-bind-address <host:port>', 'where /livez, /readyz and /metrics are served (loopback only: no auth)', `127.0.0.1:${healthPort}`)
    .addOption(new Option('--log-level <level>', 'minimum level of the JSON logs on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'));
}

/** Where the control plane's store lives, and how its API server listens. */
function natsOptions(cmd: Command): Command {
  return cmd
    .option('--api-port <port>', 'port of the Kubernetes API server', '6443')
    .option('--bind-address <ip>', 'address the API server listens on (HTTPS)', '127.0.0.1')
    .option('--max-requests-inflight <n>', 'seats for read-only requests (watches excluded); with the mutating ones, split among priority levels', '400')
    .option('--max-mutating-requests-inflight <n>', 'seats for mutating requests', '200')
    .option('--encryption-provider-config <file>', 'EncryptionConfiguration (apiserver.config.k8s.io/v1): encrypt resources such as secrets at rest (aesgcm, identity); objects not under the first key are re-encrypted at start (default: <cert-dir>/encryption-config.yaml, made with a random key)')
    .option('--audit-policy-file <file>', 'audit Policy (audit.k8s.io/v1): rules giving each request a level (None, Metadata, Request, RequestResponse)')
    .option('--audit-log-path <file>', 'where audit events go as JSON lines, "-" for stdout (default: <data-dir>/audit.log when a policy is given)')
    .option('--service-account-issuer <url>', 'the iss of service-account tokens (served at /.well-known/openid-configuration)', 'https://kubernetes.default.svc.cluster.local')
    .option('--insecure-port <port>', 'also serve plain HTTP on 127.0.0.1:<port> where every request is system:unsecured (system:masters); for local benchmarks and debugging only')
    .option('--cert-dir <dir>', 'where the cluster CA, serving, admin and service-account keys live (created if missing; several API servers share one)', '')
    .option('--tls-san <names>', 'extra DNS names or IPs for the serving certificate, comma-separated')
    .option('--tls-cert-file <file>', 'serving certificate (PEM) instead of the generated one; needs --tls-private-key-file')
    .option('--tls-private-key-file <file>', 'private key of --tls-cert-file')
    .option('--client-ca-file <file>', 'extra CA bundle for client certificates (the cluster CA is always trusted)')
    .addOption(new Option('--authorization-mode <mode>', 'Plugins: system:masters, then the distribution\'s authorizers (RBAC, Node); AlwaysAllow: everything (development only)').choices(['Plugins', 'AlwaysAllow']).default('Plugins'))
    .option('--advertise-address <ip>', 'address the kubernetes Service points at (default: the bind address)')
    .option('--service-cluster-ip-range <cidr>', 'CIDR Service ClusterIPs are allocated from', '10.96.0.0/12')
    .option('--service-node-port-range <a-b>', 'range Service node ports are allocated from', '30000-32767')
    .option('--default-watch-cache-size <n>', 'changes the watch cache keeps for watches that resume from a past resourceVersion', '20000')
    .option('--nats <urls>', 'external NATS servers, comma-separated (default: an embedded nats-server under the data dir)')
    .option('--nats-token-file <file>', 'file holding the token for the external NATS servers')
    .option('--nats-creds <file>', 'NATS .creds file for the external NATS servers')
    .addOption(new Option('--nats-replicas <n>', 'bucket replicas on an external cluster').choices(['1', '3', '5']));
}

/** The node role's flags (the kubelet's names). */
function agentOptions(cmd: Command, join: boolean): Command {
  cmd
    .option('--hostname-override <name>', 'the Node\'s name (default: the host name, lower-cased)')
    .option('--node-ip <ip>', 'the Node\'s InternalIP (default: the first non-loopback IPv4 address)')
    .option('--pod-cidr <cidr>', 'the pod CIDR of this node when the cluster allocates none', join ? undefined : '10.244.0.0/24')
    .option('--max-pods <n>', 'pods this node runs at most', '110')
    .option('--cgroup-root <name>', 'the cgroup pods run under (one per agent on a machine)', 'kubepods')
    .option('--pod-manifest-path <dir>', 'a directory of static pod manifests (default: <data-dir>/manifests)')
    .option('--manifest-url <url>', 'an HTTP URL serving static pods (a Pod or a List)')
    .option('--pod-infra-container-image <image>', 'the sandbox (pause) image, never garbage collected', 'docker.io/kubernel/pause:1.35')
    .option('--image-gc-high-threshold <percent>', 'image filesystem usage that starts image garbage collection', '85')
    .option('--image-gc-low-threshold <percent>', 'usage image garbage collection frees down to', '80')
    .option('--kubelet-port <port>', 'port of the agent\'s HTTPS API (logs, exec, attach, port-forward through the API server); 0 picks a free one', '10250');
  if (join) {
    cmd
      .option('--kubeconfig <file>', 'the node\'s credentials (written by a bootstrap-token join)')
      .option('--server <url>', 'the API server to join (with --token)')
      .option('--token <token>', 'a bootstrap token (<id>.<secret>) to join with')
      .option('--certificate-authority <file>', 'the cluster CA (PEM) to verify --server with');
  }
  return cmd;
}

let exitCode: number = EXIT.ok;

const run = (roles: readonly Role[], name: string) => async (opts: RunOptions) => {
  const { runRoles } = await import('./run-command.js');
  exitCode = await runRoles(name, roles, opts, out, err);
};

const program = new Command('kubernel')
  .description('Kubernel: a Kubernetes-compatible orchestrator built as a plugin-based microkernel')
  .exitOverride()
  .configureOutput({ writeErr: err })
  .showHelpAfterError('(run with --help for usage)');

program
  .command('version')
  .description('print the Kubernel, SDK and Node.js versions')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
  .action((opts: { output: string }) => {
    const info = { kubernel: version, sdk: SDK_VERSION, node: process.version, platform: `${process.platform}/${process.arch}` };
    out(opts.output === 'json' ? `${JSON.stringify(info, null, 2)}\n` : `Kubernel v${info.kubernel} (SDK ${info.sdk}, Node.js ${info.node}, ${info.platform})\n`);
  });

const plugins = program.command('plugins').description('inspect and validate the plugins of a distribution');
plugins
  .command('list')
  .description('list the plugins a distribution runs, with kind, version and status')
  .argument('[distribution]', 'distribution file', DEFAULT_DISTRIBUTION)
  .addOption(new Option('--role <role>', 'only this role').choices([...ROLES]))
  .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
  .action(async (file: string, opts: { role?: Role; output: string }) => {
    const { pluginsList } = await import('./plugins-command.js');
    exitCode = await pluginsList(file, opts, out, err);
  });
plugins
  .command('validate')
  .description('check a distribution: file schema, plugin packages, brands, SDK ranges and configs')
  .argument('<distribution>', 'distribution file')
  .action(async (file: string) => {
    const { pluginsValidate } = await import('./plugins-command.js');
    exitCode = await pluginsValidate(file, out, err);
  });

const images = program.command('images').description('images on this node\'s container runtime');
images
  .command('import')
  .description('load OCI image archives (OCI layout or docker save tar) into the node\'s containerd, for pods to run without a registry')
  .argument('<files...>', 'image archives')
  .option('--data-dir <dir>', 'the node\'s data dir (its managed containerd)', defaultDataDir())
  .option('--address <socket>', 'a containerd socket instead of the managed one')
  .action(async (files: string[], opts: { dataDir: string; address?: string }) => {
    const { imagesImport } = await import('./images-command.js');
    exitCode = await imagesImport(files, opts, out, err);
  });

agentOptions(natsOptions(runOptions(program.command('up'), 10257)), false)
  .description('run a whole single-node cluster (server and agent roles) in the foreground until SIGINT/SIGTERM')
  .action(run(['server', 'agent'], 'up'));
natsOptions(runOptions(program.command('server'), 10257))
  .description('run the control-plane role in the foreground until SIGINT/SIGTERM')
  .action(run(['server'], 'server'));
agentOptions(runOptions(program.command('agent'), 10248), true)
  .description('run the node role in the foreground until SIGINT/SIGTERM')
  .action(run(['agent'], 'agent'));

const logger = createLogger({ level: 'error' });
process.on('unhandledRejection', (reason) => {
  logger.error({ err: reason, component: 'process' }, 'unhandled promise rejection (kept running)');
});
process.on('uncaughtException', (error) => {
  logger.fatal({ err: error, component: 'process' }, 'uncaught exception; exiting');
  process.exit(EXIT.failed);
});

try {
  if (process.argv.length <= 2) {
    program.outputHelp();
    exitCode = EXIT.usage;
  } else {
    await program.parseAsync(process.argv);
  }
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
}
process.exit(exitCode);
