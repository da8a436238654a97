import { readFile } from 'node:fs/promises';
import { timingSafeEqual, createHash } from 'node:crypto';
import { bearerToken, definePlugin, PluginError, untilAborted, type Authenticator, type UserInfo } from '@kubernel/sdk';

/** Configuration of {@link tokenFilePlugin}. */
export interface TokenFileConfig {
  /** A CSV file of `token,user,uid[,"group1,group2"]` lines (Kubernetes' `--token-auth-file`). */
  readonly path: string;
}

/** Splits one CSV line, honouring double quotes (`""` inside quotes is a quote). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(field);
      field = '';
    } else field += ch;
  }
  out.push(field);
  return out.map((f) => f.trim());
}

/**
 * Parses a static token file. Lines: `token,user,uid` and optionally a fourth column of groups
 * (quoted when several). Blank lines and lines starting with `#` are skipped.
 * @throws {Error} naming the line of a malformed or duplicate entry
 */
export function parseTokenFile(text: string): Map<string, UserInfo> {
  const tokens = new Map<string, UserInfo>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [token, username, uid, groups] = csvFields(line);
    if (!token || !username || uid === undefined) throw new Error(`line ${i + 1}: expected token,user,uid[,groups]`);
    if (tokens.has(token)) throw new Error(`line ${i + 1}: duplicate token`);
    tokens.set(token, { username, ...(uid ? { uid } : {}), groups: groups ? groups.split(',').map((g) => g.trim()).filter(Boolean) : [] });
  });
  return tokens;
}

/** Authenticates bearer tokens listed in `tokens` (compared in constant time per candidate). */
export function tokenAuthenticator(tokens: ReadonlyMap<string, UserInfo>): Authenticator {
  // Index by a hash so the lookup itself does not leak through timing; then compare in constant time.
  const byHash = new Map<string, { token: Buffer; user: UserInfo }>();
  for (const [token, user] of tokens) byHash.set(createHash('sha256').update(token).digest('hex'), { token: Buffer.from(token), user });
  return {
    async authenticate(request) {
      const token = bearerToken(request);
      if (token === undefined) return undefined;
      const entry = byHash.get(createHash('sha256').update(token).digest('hex'));
      const given = Buffer.from(token);
      if (entry && entry.token.length === given.length && timingSafeEqual(entry.token, given)) return { user: entry.user };
      // Not one of ours: another token authenticator (service accounts, bootstrap tokens) may know it.
      return undefined;
    },
  };
}

export const tokenFilePlugin = definePlugin<'authenticator', TokenFileConfig>({
  id: 'authn-token-file',
  kind: 'authenticator',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Authenticates static bearer tokens from a CSV file (Kubernetes --token-auth-file).',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: { path: { type: 'string', minLength: 1, description: 'CSV file: token,user,uid[,"group1,group2"]' } },
  },
  async start(handle, config, signal) {
    let text: string;
    try {
      text = await readFile(config.path, 'utf8');
    } catch (err) {
      throw new PluginError(handle.plugin.id, 'path', `cannot read ${config.path}: ${(err as Error).message}`);
    }
    let tokens: Map<string, UserInfo>;
    try {
      tokens = parseTokenFile(text);
    } catch (err) {
      throw new PluginError(handle.plugin.id, 'path', `${config.path}: ${(err as Error).message}`);
    }
    handle.logger.info(`${tokens.size} static token(s) from ${config.path}`);
    handle.provide(tokenAuthenticator(tokens));
    await untilAborted(signal);
  },
});
