/// <reference path="./interfaces/edgeward-module-lifecycle.d.ts" />
/// <reference path="./interfaces/edgeward-module-logging.d.ts" />
/// <reference path="./interfaces/edgeward-workload-identity.d.ts" />
declare module 'guest:hello/identity-module' {
  export type * as EdgewardModuleLogging010 from 'edgeward:module/logging@0.1.0'; // import edgeward:module/logging@0.1.0
  export type * as EdgewardWorkloadIdentity010 from 'edgeward:workload/identity@0.1.0'; // import edgeward:workload/identity@0.1.0
  export * as lifecycle from 'edgeward:module/lifecycle@0.1.0'; // export edgeward:module/lifecycle@0.1.0
}
