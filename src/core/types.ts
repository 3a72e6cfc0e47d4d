/**
 * Core's types for other runtimes (the webviews and src/shared, whose bundles must not pull in
 * Node or core's code): a type-only entry, so a protocol states a view type once, here, instead of
 * restating core's. Lint allows only `import type` from this file outside core.
 */
export type { PlanRow, PlanView, Problem, Severity } from './convert/planRow';
export type { LaunchProfile } from './serve/launchProfile';
export type { Phase } from './serve/engines';
export type { ServerGauges } from './serve/metrics';
export type { TensorStats } from './tensor/statsResult';
