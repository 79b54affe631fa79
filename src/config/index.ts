// Public API of the config stage.
export { ConfigError, formatProblem, type ConfigProblem } from './errors.js';
export { parseDuration, formatDuration } from './duration.js';
export { parsePortSpec } from './port.js';
export { parseConfig } from './parse.js';
export { defaultConfig } from './defaults.js';
export { loadConfig, readConfigText, decodeConfigText, MAX_CONFIG_BYTES, type LoadOptions } from './load.js';
export { readTrustedFile, UntrustedFileError, type TrustedReadOptions } from './safe-read.js';
export { exceededBackendLimits, type BackendLimit } from './backend-limits.js';
export { formatConfig, configToJSON, type ConfigJSON, type DoorJSON } from './format.js';
export {
  MAX_SEQUENCE_STEPS,
  MAX_WINDOW_MS,
  MAX_GAP_MS,
  MAX_DURATION_MS,
  MAX_SOURCES_LIMIT,
  DEFAULT_MAX_SOURCES,
  DOOR_NAME_RE,
  EBPF_MAX_PORTS,
} from '../limits.js';
