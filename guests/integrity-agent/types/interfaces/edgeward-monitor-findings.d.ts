declare module 'edgeward:monitor/findings@0.1.0' {
  /**
   * Record `f`; returns its id.
   */
  export function submit(f: Finding): string;
  /**
   * # Variants
   * 
   * ## `"info"`
   * 
   * ## `"low"`
   * 
   * ## `"medium"`
   * 
   * ## `"high"`
   * 
   * ## `"critical"`
   */
  export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
  export interface Finding {
    /**
     * The extension's rule, e.g. `EW-DENIED-CALL` (letters, digits, `.` `_` `:` `/` `-`, at most 128).
     */
    ruleId: string,
    severity: Severity,
    /**
     * One line, at most 1024 bytes.
     */
    summary: string,
    /**
     * At most 32 pairs; keys at most 64 bytes, values at most 1024.
     */
    evidence: Array<[string, string]>,
    /**
     * At most 16 tags of at most 64 bytes.
     */
    tags: Array<string>,
    /**
     * The module the finding is about, if any.
     */
    subject?: string,
  }
  export type FindingsError = FindingsErrorInvalidArgument | FindingsErrorLimitExceeded | FindingsErrorUnavailable;
  export interface FindingsErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  export interface FindingsErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * The findings store cannot be written; retrying later may work.
   */
  export interface FindingsErrorUnavailable {
    tag: 'unavailable',
  }
}
