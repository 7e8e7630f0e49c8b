/// <reference path="./interfaces/edgeward-module-lifecycle.d.ts" />
/// <reference path="./interfaces/edgeward-module-logging.d.ts" />
/// <reference path="./interfaces/edgeward-monitor-events.d.ts" />
/// <reference path="./interfaces/edgeward-monitor-findings.d.ts" />
/// <reference path="./interfaces/edgeward-monitor-respond.d.ts" />
declare module 'guest:integrity-agent/integrity-agent' {
  export type * as EdgewardModuleLogging010 from 'edgeward:module/logging@0.1.0'; // import edgeward:module/logging@0.1.0
  export type * as EdgewardMonitorEvents010 from 'edgeward:monitor/events@0.1.0'; // import edgeward:monitor/events@0.1.0
  export type * as EdgewardMonitorFindings010 from 'edgeward:monitor/findings@0.1.0'; // import edgeward:monitor/findings@0.1.0
  export type * as EdgewardMonitorRespond010 from 'edgeward:monitor/respond@0.1.0'; // import edgeward:monitor/respond@0.1.0
  export * as lifecycle from 'edgeward:module/lifecycle@0.1.0'; // export edgeward:module/lifecycle@0.1.0
}
