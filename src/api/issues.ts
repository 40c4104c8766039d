/**
 * A problem found in a config, located so an editor can jump to it: what the validator reports, and
 * what APIs return (a NACK's issues, `PUT /config` on the control plane).
 */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the problem has no place in the file (e.g. the file is missing). */
  line: number;
  column: number;
  /** Field path such as `routes[2].destinations[0].service`; empty for the whole document. */
  path: string;
  message: string;
  /** A concrete fix, when one can be guessed. */
  hint?: string;
  /**
   * Stable kind of problem, for tools that act on it (`meshgate analyze` maps it to its own codes).
   * Set for reference problems: `unknown-service`, `unknown-subset`, `unknown-listener`, `weights`.
   */
  code?: string;
}
