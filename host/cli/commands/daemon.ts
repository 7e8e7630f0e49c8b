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
        // Handlers first: a signal that arrives while the daemon starts is kept and honoured once it has
        // started, so a stop is always graceful (exit 0), never the default kill.
        let started = false;
        let pending: NodeJS.Signals | undefined;
        const onSignal = (sig: NodeJS.Signals) => {
          if (started) void daemon.stop(sig);
          else pending ??= sig;
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        await daemon.start();
        started = true;
        if (pending) void daemon.stop(pending);
        process.stderr.write(`edgeward daemon running (pid ${process.pid}); management API on ${loaded.config.listen.management_uri}\n`);
        return daemon.wait();
      }),
    );
}
