/**
 * api-version handling as IoT Edge does it (http-common): the query parameter is mandatory; a missing
 * one gets 400 "api-version not specified", an unknown one 400 `invalid api-version "X"`; each route has a
 * minimum version.
 */

/** Versions the management API knows, oldest first: IoT Edge's, then Edgeward's own. */
export const MGMT_API_VERSIONS = ['2018-06-28', '2019-01-30', '2019-10-22', '2019-11-05', '2020-07-07', '2022-08-03', '2026-11-01'] as const;
export type MgmtApiVersion = (typeof MGMT_API_VERSIONS)[number];

/** What the Edgeward CLI sends; routes that are Edgeward's own need at least this. */
export const MGMT_API_VERSION: MgmtApiVersion = '2026-11-01';

export function versionIndex(v: string): number {
  return (MGMT_API_VERSIONS as readonly string[]).indexOf(v);
}

/**
 * Versions the workload API accepts (edgelet-http version.rs; `2021-05-11` is deliberately absent, as
 * there). Every workload route exists from the first.
 */
export const WORKLOAD_API_VERSIONS = ['2018-06-28', '2019-01-30', '2019-10-22', '2019-11-05', '2020-07-07', '2021-12-07', '2022-08-03'] as const;
/** What Edgeward puts in IOTEDGE_APIVERSION for native modules. */
export const WORKLOAD_API_VERSION_FOR_MODULES = '2020-07-07';
