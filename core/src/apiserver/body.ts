import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { badRequest, tooLarge, unsupportedMediaType } from './status.js';

/** Reads a request body up to `limit` bytes. @throws {ApiError} 413 past the limit */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

const MAX_DEPTH = 100;

function depthOf(v: unknown, limit: number, depth = 0): number {
  if (depth > limit) return depth;
  if (typeof v !== 'object' || v === null) return depth;
  let max = depth;
  for (const x of Object.values(v)) max = Math.max(max, depthOf(x, limit, depth + 1));
  return max;
}

/**
 * Parses a body as JSON or YAML by its Content-Type (JSON when absent).
 * @throws {ApiError} 400 for malformed input or excessive nesting, 415 for another media type
 */
export function parseBody(raw: Buffer, contentType: string | undefined, accepted: readonly string[] = ['application/json', 'application/yaml']): unknown {
  const type = mediaType(contentType) || 'application/json';
  if (!accepted.includes(type)) throw unsupportedMediaType(type);
  const text = raw.toString('utf8');
  if (raw.length > 0 && Buffer.byteLength(text) !== raw.length && text.includes('\uFFFD')) throw badRequest('the request body is not valid UTF-8');
  if (text.trim() === '') throw badRequest('the request body is empty');
  let value: unknown;
  try {
    value = type.endsWith('yaml') ? parseYaml(text, { maxAliasCount: 100 }) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid ${type.endsWith('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (depthOf(value, MAX_DEPTH) > MAX_DEPTH) throw badRequest(`the request body nests deeper than ${MAX_DEPTH} levels`);
  return value;
}
