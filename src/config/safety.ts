// The daemon runs as root and its config names commands it will execute
// (start_command/stop_command) and the firewall it rewrites: a config file
// that someone else can write is a way to root. Like sshd's StrictModes, the
// daemon refuses such a file when it runs as root.
import { stat } from 'node:fs/promises';

/** Why `path` is unsafe as a root daemon's config, or undefined when it is fine. */
export async function configFileUnsafeReason(path: string, uid: number | undefined = process.getuid?.()): Promise<string | undefined> {
  if (uid !== 0) return undefined;
  const st = await stat(path);
  if (st.uid !== 0) return `${path} is owned by uid ${st.uid}, not root: as root, knockwatch runs commands and changes the firewall from this file (chown root ${path})`;
  if ((st.mode & 0o022) !== 0) {
    const who = (st.mode & 0o002) !== 0 ? 'everyone' : 'its group';
    return `${path} is writable by ${who} (mode ${(st.mode & 0o777).toString(8)}): as root, knockwatch runs commands and changes the firewall from this file (chmod go-w ${path})`;
  }
  return undefined;
}
