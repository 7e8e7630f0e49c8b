/**
 * Why the workload identity service refused a request. Each boundary words it its own way: the
 * capability as the WIT `identity-error` variant, the HTTP API as IoT Edge's `invalid parameter: …`.
 */

export type WorkloadIdentityErrorTag = 'invalid-argument' | 'limit-exceeded';

export class WorkloadIdentityError extends Error {
  constructor(
    readonly tag: WorkloadIdentityErrorTag,
    message: string,
  ) {
    super(message);
    this.name = 'WorkloadIdentityError';
  }
}

export const invalidArgument = (why: string): WorkloadIdentityError => new WorkloadIdentityError('invalid-argument', why);
export const limitExceeded = (why: string): WorkloadIdentityError => new WorkloadIdentityError('limit-exceeded', why);
