#!/usr/bin/env node
// The `weft` binary: global options, the commands, and the one place failures
// become an `error: ...` line and an exit code.
import { Command, CommanderError } from 'commander';
import { versionLine } from './commands/version.js';

type Register = (program: Command) => void;

/**
 * Every command, in help order, loaded on demand: `weft proxy` is a long-lived sidecar,
 * and importing every command (the control plane, the API schemas, etcd...) only to run
 * one of them cost ~17 MB of its idle RSS.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  up: async () => (await import('./commands/up.js')).registerUp,
  control: async () => (await import('./commands/control.js')).registerControl,
  proxy: async () => (await import('./commands/proxy.js')).registerProxy,
  run: async () => (await import('./commands/run.js')).registerRun,
  apply: async () => (await import('./commands/apply.js')).registerApply,
  get: async () => (await import('./commands/get.js')).registerGet,
  describe: async () => (await import('./commands/describe.js')).registerDescribe,
  delete: async () => (await import('./commands/delete.js')).registerDelete,
  'proxy-status': async () => (await import('./commands/proxy-status.js')).registerProxyStatus,
  'proxy-config': async () => (await import('./commands/proxy-config.js')).registerProxyConfig,
  tap: async () => (await import('./commands/tap.js')).registerTap,
  stat: async () => (await import('./commands/stat.js')).registerStat,
  top: async () => (await import('./commands/top.js')).registerTop,
  bootstrap: async () => (await import('./commands/bootstrap.js')).registerBootstrap,
  token: async () => (await import('./commands/token.js')).registerToken,
  ca: async () => (await import('./commands/ca.js')).registerCa,
  certs: async () => (await import('./commands/certs.js')).registerCerts,
  validate: async () => (await import('./commands/validate.js')).registerValidate,
  schema: async () => (await import('./commands/schema.js')).registerSchema,
  version: async () => (await import('./commands/version.js')).registerVersion,
};

/** Global options that take a value (so the value is not taken for the command name). */
const GLOBAL_WITH_VALUE = new Set(['--server', '--token', '--data-dir']);

/** The command named on the line, when it is a known one (then only it is loaded); else undefined (help, typos: load all). */
function invokedCommand(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return undefined;
    if (a.startsWith('-')) { if (GLOBAL_WITH_VALUE.has(a)) i++; continue; }
    return Object.hasOwn(COMMANDS, a) ? a : undefined;
  }
  return undefined;
}

async function createProgram(args: readonly string[]): Promise<Command> {
  const program = new Command('weft')
    .description('Weft service mesh: control plane, proxy and tools')
    .option('--server <url>', 'control plane HTTP API (default: WEFT_SERVER or http://127.0.0.1:15020)')
    .option('--token <token>', 'admin token (default: WEFT_TOKEN, or DIR/admin-token of --data-dir)')
    .option('--data-dir <dir>', 'control plane data directory (default: WEFT_DATA_DIR; weft control: ~/.weft)')
    .option('-v, --verbose', 'more detail, and stacks of errors')
    .version(versionLine(), '--version', 'print the version')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true)
    .exitOverride();

  const only = invokedCommand(args);
  const names = only === undefined ? Object.keys(COMMANDS) : [only];
  for (const register of await Promise.all(names.map((n) => COMMANDS[n]!()))) register(program);
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  let program: Command | undefined;
  try {
    // bootstrap.js and report.js pull in the YAML printer: loaded only when needed.
    const args = invokedCommand(argv.slice(2)) === 'bootstrap' ? (await import('./commands/bootstrap.js')).rewriteBootstrapServerFlag(argv.slice(2)) : argv.slice(2);
    program = await createProgram(args);
    await program.parseAsync([...argv.slice(0, 2), ...args]);
  } catch (e) {
    const { EXIT_USAGE, reportError } = await import('./report.js');
    if (e instanceof CommanderError) {
      // commander has printed its message (`error: unknown option '--x'`) or the help/version already.
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    // -v may sit anywhere on the line; when parsing failed midway, look at argv too.
    const verbose = program?.opts<{ verbose?: boolean }>().verbose === true || argv.includes('-v') || argv.includes('--verbose');
    process.exitCode = reportError(e, { verbose });
  }
}

await main(process.argv);
