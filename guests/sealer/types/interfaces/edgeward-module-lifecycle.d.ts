declare module 'edgeward:module/lifecycle@0.1.0' {
  /**
   * `config` is JSON: {"name", "generationId", "env": {..}, "settings": {..}}.
   */
  export function start(config: string): void;
  export function stop(): void;
  /**
   * A direct method. `payload` and the ok value are JSON text; an error is a message.
   */
  export function invoke(method: string, payload: string): string;
}
