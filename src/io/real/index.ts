// Entry point of the real Xen ports (dom0 with /dev/xen). Nothing opens until first use, so a
// process without Xen can build them and fails only, in one line, when it uses them.
import type { EventChannel, GrantTable } from '../ports';
import { RealEventChannel, type RealEventChannelOptions } from './evtchn';
import { RealGrantTable, type RealGrantTableOptions } from './gnttab';

export { XenDeviceError } from './errors';
export { RealEventChannel } from './evtchn';
export { RealGrantTable } from './gnttab';

export interface RealXenOptions {
  gnttab?: RealGrantTableOptions;
  evtchn?: RealEventChannelOptions;
}

export function openRealXen(opts: RealXenOptions = {}): { gnttab: GrantTable; evtchn: EventChannel } {
  return { gnttab: new RealGrantTable(opts.gnttab), evtchn: new RealEventChannel(opts.evtchn) };
}
