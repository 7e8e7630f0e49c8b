/** Where Edgeward keeps things when the config does not say: one per-user home directory. */
import os from 'node:os';
import path from 'node:path';

/**
 * `EDGEWARD_HOME`, else `$XDG_DATA_HOME/edgeward`, else `~/.local/share/edgeward`.
 * Holds `config.toml` (the applied config), `state/` and `run/` (sockets) by default.
 */
export function edgewardHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EDGEWARD_HOME) return path.resolve(env.EDGEWARD_HOME);
  const xdg = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(os.homedir(), '.local', 'share');
  return path.join(xdg, 'edgeward');
}

export function defaultStateDir(home: string): string {
  return path.join(home, 'state');
}

export function defaultRunDir(home: string): string {
  return path.join(home, 'run');
}

/** The config a daemon started without `-c` uses, if it exists (written by `edgeward config apply`). */
export function homeConfigFile(home: string): string {
  return path.join(home, 'config.toml');
}

/** `unix:///a/b` → `/a/b`. */
export function socketPathOf(uri: string): string {
  return uri.replace(/^unix:\/\//, '');
}
