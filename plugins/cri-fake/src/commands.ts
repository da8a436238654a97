/**
 * How the fake runtime interprets commands without running them: a container's main command
 * decides whether (and when, and how) it exits; an exec command decides its output and exit code.
 * A tiny subset of POSIX `sh -c` is understood (`exit N`, `sleep N`, `echo ...`, `true`, `false`,
 * `cat PATH`, separated by `;` or `&&`); anything else is "a program the fake does not know".
 *
 * @module
 */

/** One step of a simulated command. */
export type Step =
  | { readonly op: 'exit'; readonly code: number }
  | { readonly op: 'status'; readonly code: number }
  | { readonly op: 'sleep'; readonly seconds: number }
  | { readonly op: 'echo'; readonly text: string }
  | { readonly op: 'cat'; readonly path: string }
  | { readonly op: 'env' }
  | { readonly op: 'hostname' }
  | { readonly op: 'unknown'; readonly argv: readonly string[] };

/** A parsed command: steps run in order; `and` makes a non-zero status stop the sequence (`&&`). */
export interface Script {
  readonly steps: ReadonlyArray<{ readonly step: Step; readonly and: boolean }>;
}

const base = (s: string): string => s.slice(s.lastIndexOf('/') + 1);

/** Parses one simple command (already split into words). */
export function parseWords(argv: readonly string[]): Step {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) return { op: 'unknown', argv };
  switch (base(cmd)) {
    case 'exit': {
      const code = rest.length === 0 ? 0 : Number(rest[0]);
      return Number.isInteger(code) ? { op: 'exit', code: ((code % 256) + 256) % 256 } : { op: 'unknown', argv };
    }
    case 'true':
    case ':':
      return { op: 'status', code: 0 };
    case 'false':
      return { op: 'status', code: 1 };
    case 'sleep': {
      if (rest[0] === 'infinity') return { op: 'sleep', seconds: Infinity };
      const seconds = Number(rest[0]);
      return rest.length === 1 && Number.isFinite(seconds) && seconds >= 0 ? { op: 'sleep', seconds } : { op: 'unknown', argv };
    }
    case 'echo':
      return rest[0] === '-n' ? { op: 'echo', text: rest.slice(1).join(' ') } : { op: 'echo', text: `${rest.join(' ')}\n` };
    case 'cat':
      return rest.length === 1 ? { op: 'cat', path: rest[0]! } : { op: 'unknown', argv };
    case 'env':
      return rest.length === 0 ? { op: 'env' } : { op: 'unknown', argv };
    case 'hostname':
      return { op: 'hostname' };
    default:
      return { op: 'unknown', argv };
  }
}

/** Splits a shell word list naively: whitespace, with single and double quotes grouping. */
function words(statement: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(statement); m; m = re.exec(statement)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/**
 * Parses a full command line (`[...command, ...args]`): `sh -c SCRIPT` (also `bash`, `/bin/sh`,
 * `-ec`) becomes the script's statements; any other command line is one step.
 */
export function parseCommand(argv: readonly string[]): Script {
  const [cmd, flag, script] = argv;
  if (cmd !== undefined && ['sh', 'bash', 'ash', 'dash'].includes(base(cmd)) && flag !== undefined && /^-[a-z]*c$/.test(flag) && script !== undefined) {
    const steps: Array<{ step: Step; and: boolean }> = [];
    let and = false;
    for (const part of script.split(/(;|&&|\n)/)) {
      if (part === ';' || part === '\n') {
        and = false;
        continue;
      }
      if (part === '&&') {
        and = true;
        continue;
      }
      const w = words(part);
      if (w.length === 0) continue;
      steps.push({ step: parseWords(w), and });
      and = false;
    }
    return { steps };
  }
  return { steps: [{ step: parseWords(argv), and: false }] };
}

/**
 * How a container's main process behaves: exits with `exitCode` after `afterSeconds`, or, when
 * `afterSeconds` is Infinity, runs until stopped.
 */
export interface MainBehaviour {
  readonly afterSeconds: number;
  readonly exitCode: number;
}

/** Runs forever (a server, an unknown program, `sleep infinity`). */
export const RUNS_FOREVER: MainBehaviour = Object.freeze({ afterSeconds: Infinity, exitCode: 0 });

/**
 * The behaviour of a container's main command: known steps accumulate sleep time and the last
 * status; an unknown program (or no command: the image's entrypoint) runs until stopped.
 */
export function mainBehaviour(argv: readonly string[]): MainBehaviour {
  if (argv.length === 0) return RUNS_FOREVER;
  let seconds = 0;
  let status = 0;
  for (const { step, and } of parseCommand(argv).steps) {
    if (and && status !== 0) break;
    switch (step.op) {
      case 'exit':
        return { afterSeconds: seconds, exitCode: step.code };
      case 'status':
        status = step.code;
        break;
      case 'sleep':
        seconds += step.seconds;
        status = 0;
        break;
      case 'echo':
      case 'env':
      case 'hostname':
        status = 0;
        break;
      case 'cat':
      case 'unknown':
        return RUNS_FOREVER;
    }
  }
  return seconds === Infinity ? RUNS_FOREVER : { afterSeconds: seconds, exitCode: status };
}
