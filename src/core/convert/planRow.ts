/**
 * What a person reads of a conversion plan: its problems, and the rows planView makes of it. Types
 * only, with no imports, so the plan webview can take them through core/types without pulling in
 * the planner.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface Problem {
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  readonly tensor?: string;
}

export interface PlanRow {
  /** The source tensor; '' for a target no source provides. */
  readonly from: string;
  /** The export's tensor; '' for a source no rule maps. */
  readonly to: string;
  readonly transforms: string;
  /** '[a, b]' of the target, or '' when there is no target. */
  readonly shape: string;
  readonly dtype: string;
  /** The worst severity among this row's problems. */
  readonly severity?: Severity;
  /** The problems that name this row's source or target, worst first. */
  readonly problems: readonly Problem[];
}

export interface PlanView {
  /** Label and value, in reading order (source, preset, rules, prefix, model). */
  readonly facts: readonly (readonly [string, string])[];
  /** Every problem of the plan, worst first. */
  readonly problems: readonly Problem[];
  readonly counts: Readonly<Record<Severity, number>>;
  readonly rows: readonly PlanRow[];
  /** The config.json to write, pretty-printed; undefined when the shapes did not settle it. */
  readonly config: string | undefined;
}
