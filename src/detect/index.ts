// Public surface of the detection stage.
export { createDetector, DEFAULT_MAX_SOURCES } from './detector.js';
export type { Detector, DetectorOptions, DetectorStats, Emit, OpenAccess } from './detector.js';
export { detectKnocks, runDetector } from './operator.js';
export type { DetectKnocksOptions, RunDetectorOptions } from './operator.js';
export { liveTicks } from './clock.js';
export type { LiveTicksOptions } from './clock.js';
export { REPEAT_MS } from './sequence.js';
export { portKey } from './matcher.js';
export { captureNeeds } from './capture-needs.js';
export type { CaptureNeeds } from './capture-needs.js';
