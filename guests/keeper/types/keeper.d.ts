/// <reference path="./interfaces/edgeward-hsm-keys.d.ts" />
/// <reference path="./interfaces/edgeward-module-lifecycle.d.ts" />
/// <reference path="./interfaces/edgeward-module-logging.d.ts" />
declare module 'guest:keeper/keeper' {
  export type * as EdgewardHsmKeys010 from 'edgeward:hsm/keys@0.1.0'; // import edgeward:hsm/keys@0.1.0
  export type * as EdgewardModuleLogging010 from 'edgeward:module/logging@0.1.0'; // import edgeward:module/logging@0.1.0
  export * as lifecycle from 'edgeward:module/lifecycle@0.1.0'; // export edgeward:module/lifecycle@0.1.0
}
