#!/usr/bin/env node
// The `weft` binary: global options, the commands, and the one place failures
// become an `error: ...` line and an exit code.
import { Command, CommanderError } from 'commander';
import { registerApply } from './commands/apply.js';
import { registerBootstrap, rewriteBootstrapServerFlag } from './commands/bootstrap.js';
import { registerControl } from './commands/control.js';
import { registerDelete } from './commands/delete.js';
import { registerDescribe } from './commands/describe.js';
import { registerGet } from './commands/get.js';
import { registerProxy } from './commands/proxy.js';
import { registerProxyConfig } from './commands/proxy-config.js';
import { registerProxyStatus } from './commands/proxy-status.js';
import { registerSchema } from './commands/schema.js';
import { registerToken } from './commands/token.js';
import { registerValidate } from './commands/validate.js';
import { registerVersion, versionLine } from './commands/version.js';
import { EXIT_USAGE, reportError } from './report.js';

function createProgram(): Command {
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

  registerControl(program);
  registerProxy(program);
  registerApply(program);
  registerGet(program);
  registerDescribe(program);
  registerDelete(program);
  registerProxyStatus(program);
  registerProxyConfig(program);
  registerBootstrap(program);
  registerToken(program);
  registerValidate(program);
  registerSchema(program);
  registerVersion(program);
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  const program = createProgram();
  try {
    await program.parseAsync([...argv.slice(0, 2), ...rewriteBootstrapServerFlag(argv.slice(2))]);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its message (`error: unknown option '--x'`) or the help/version already.
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    // -v may sit anywhere on the line; when parsing failed midway, look at argv too.
    const verbose = program.opts<{ verbose?: boolean }>().verbose === true || argv.includes('-v') || argv.includes('--verbose');
    process.exitCode = reportError(e, { verbose });
  }
}

await main(process.argv);
