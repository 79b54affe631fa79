// What `replay` needs for spa doors: the users' keys (read like the daemon
// does, group/others-readable files refused, but without the root-ownership
// rules: replay opens nothing) and an in-memory store. Freshness is judged on
// packet time, so a capture replays the same way on any day; nothing is read
// from or written to the state directory.
import { hasSpaDoors, keyBaseDir, loadSpaUsers } from '../config/users.js';
import type { DoorStores } from '../detect/kinds.js';
import { createMemorySpaStore } from '../spa/store.js';
import type { KnockwatchConfig, SpaDoor } from '../types.js';

export async function replayStores(config: KnockwatchConfig, configPath: string | undefined): Promise<DoorStores> {
  if (!hasSpaDoors(config.doors)) return {};
  const path = configPath ?? '(built-in config)';
  const users = await loadSpaUsers(config.users ?? [], path, { baseDir: configPath !== undefined ? keyBaseDir(configPath) : process.cwd(), ownershipRules: false });
  return { spa: createMemorySpaStore(users, config.doors.filter((d): d is SpaDoor => d.kind === 'spa')) };
}
