/** Config test helpers. */
import { expect } from 'vitest';
import { ConfigError, parseConfigText } from '../../host/config/load.js';

/** The problems a config text is refused with (the test fails if it is accepted). */
export function configProblems(text: string, env: NodeJS.ProcessEnv): { path: string; message: string }[] {
  try {
    parseConfigText(text, 'test.toml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('config was accepted');
}
