/**
 * Core's types for other runtimes (the webviews and src/shared, whose bundles must not pull in
 * Node or core's code): a type-only entry, so a protocol states a view type once, here, instead of
 * restating core's. Lint allows only `import type` from this file outside core.
 */
export type { PlanRow, PlanView, Problem, Severity } from './convert/planRow';
export type { ServerGauges } from './serve/metrics';
export type { AdapterRef, EngineFacts, EngineId, FitView, LaunchProfile, Phase, ServerStatus } from './serve/serveTypes';
export type { TensorStats } from './tensor/statsResult';
export type { TensorSortKey } from './checkpoint';
export type { DiffStatus, ValueDiff } from './diffResult';
export type { Expansion } from './pytree';
export type { SideFiles } from './sideFilesResult';
export type { SliceRequest } from './tensor/sliceRequest';
export type { Histogram } from './tensor/statsResult';
