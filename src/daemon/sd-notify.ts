// Tells systemd (Type=notify) that the daemon is ready or stopping. A no-op outside systemd.
import koffi = require('koffi');

let notify: ((unsetEnv: number, state: string) => number) | null | undefined;

export function sdNotify(state: string): boolean {
  if (!process.env.NOTIFY_SOCKET) return false;
  if (notify === undefined) {
    try {
      notify = koffi.load('libsystemd.so.0').func('int sd_notify(int unset_environment, const char *state)') as unknown as typeof notify;
    } catch {
      notify = null;
    }
  }
  return notify ? notify(0, state) > 0 : false;
}
