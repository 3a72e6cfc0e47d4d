/** Core's Node adapters (files, processes, workers, sidecars): kept out of ./index so that surface stays pure. */
export { NodeFileOpener, openAtomicFileSink } from './fileOpener';
export { PythonSidecar, SidecarPool, sidecarScript, SIDECAR_PROTOCOL, type SidecarHello, type SidecarOptions } from './pythonSidecar';
export { ValueWorker, type JobOptions } from '../worker/valueWorker';
export { OutputFolder } from './outputFolder';
export { checkServed, defaultCheckApi, servedReply, type CheckServedOptions } from './checkServed';
export { DEFAULT_PROMPTS, verifyExport, verifyScript, verifyTemplate, type PromptReport, type VerifyOptions, type VerifyReport } from './verify';
export { freePort, groupAlive, portFree, ServerProcess, type ServerProcessOptions, type ServerState, type ServerStatus } from './serverProcess';
export { ServerRegistry, startTicks, type RegisteredServer } from './serverRegistry';
export { Confinement } from './confinement';
export { assertOutputOutsideSources, type IdentityFs, type NodeId, type OutputSource } from './outputSafety';
export { HandleCache } from './handleCache';
export { readAdapters } from './readAdapters';
