/** `edgeward daemon [-c FILE]`: the security manager and module runtime, in the foreground. */
import type { Command } from 'commander';
import { action } from '../output.js';
import { loadCliConfig, type CliContext } from '../context.js';

export function registerDaemonCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('daemon')
    .description('run the security manager and module runtime in the foreground')
    .option('-c, --config <file>', 'config file (default: $EDGEWARD_CONFIG, <home>/config.toml, or the embedded default)')
    .action(
      action(async (opts: { config?: string }) => {
        const loaded = await loadCliConfig({ ...ctx(), configFile: opts.config ?? ctx().configFile });
        const { Daemon } = await import('../../daemon/daemon.js'); // the CLI's other commands stay light
        const daemon = new Daemon(loaded);
        await daemon.start();
        const onSignal = (sig: NodeJS.Signals) => void daemon.stop(sig);
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        process.stderr.write(`edgeward daemon running (pid ${process.pid}); management API on ${loaded.config.listen.management_uri}\n`);
        return daemon.wait();
      }),
    );
}
