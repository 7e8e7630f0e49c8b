/// <reference path="./interfaces/edgeward-attest-evidence.d.ts" />
/// <reference path="./interfaces/edgeward-attest-seal.d.ts" />
/// <reference path="./interfaces/edgeward-module-lifecycle.d.ts" />
/// <reference path="./interfaces/edgeward-module-logging.d.ts" />
/// <reference path="./interfaces/wasi-clocks-wall-clock.d.ts" />
/// <reference path="./interfaces/wasi-filesystem-preopens.d.ts" />
/// <reference path="./interfaces/wasi-filesystem-types.d.ts" />
/// <reference path="./interfaces/wasi-io-error.d.ts" />
/// <reference path="./interfaces/wasi-io-poll.d.ts" />
/// <reference path="./interfaces/wasi-io-streams.d.ts" />
declare module 'guest:sealer/sealer' {
  export type * as EdgewardAttestEvidence010 from 'edgeward:attest/evidence@0.1.0'; // import edgeward:attest/evidence@0.1.0
  export type * as EdgewardAttestSeal010 from 'edgeward:attest/seal@0.1.0'; // import edgeward:attest/seal@0.1.0
  export type * as EdgewardModuleLogging010 from 'edgeward:module/logging@0.1.0'; // import edgeward:module/logging@0.1.0
  export type * as WasiClocksWallClock0212 from 'wasi:clocks/wall-clock@0.2.12'; // import wasi:clocks/wall-clock@0.2.12
  export type * as WasiFilesystemPreopens0212 from 'wasi:filesystem/preopens@0.2.12'; // import wasi:filesystem/preopens@0.2.12
  export type * as WasiFilesystemTypes0212 from 'wasi:filesystem/types@0.2.12'; // import wasi:filesystem/types@0.2.12
  export type * as WasiIoError0212 from 'wasi:io/error@0.2.12'; // import wasi:io/error@0.2.12
  export type * as WasiIoPoll0212 from 'wasi:io/poll@0.2.12'; // import wasi:io/poll@0.2.12
  export type * as WasiIoStreams0212 from 'wasi:io/streams@0.2.12'; // import wasi:io/streams@0.2.12
  export * as lifecycle from 'edgeward:module/lifecycle@0.1.0'; // export edgeward:module/lifecycle@0.1.0
}
