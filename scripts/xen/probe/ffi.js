'use strict';
// Proves koffi FFI works in dom0: opens libxengnttab and libxenevtchn handles, and makes
// one real call through each (set_max_grants; bind+unbind an unbound event channel).
const koffi = require('koffi');

function lib(name) {
  try {
    return koffi.load(name);
  } catch (err) {
    throw new Error(`cannot load ${name}: ${err.message}`);
  }
}

function main() {
  const gnt = lib('libxengnttab.so.1');
  const evt = lib('libxenevtchn.so.1');
  const gnttabOpen = gnt.func('void *xengnttab_open(void *logger, unsigned int flags)');
  const gnttabSetMax = gnt.func('int xengnttab_set_max_grants(void *xgt, uint32_t nr)');
  const gnttabClose = gnt.func('int xengnttab_close(void *xgt)');
  const evtchnOpen = evt.func('void *xenevtchn_open(void *logger, unsigned int flags)');
  const evtchnFd = evt.func('int xenevtchn_fd(void *xce)');
  const evtchnBindUnbound = evt.func('int xenevtchn_bind_unbound_port(void *xce, uint32_t domid)');
  const evtchnUnbind = evt.func('int xenevtchn_unbind(void *xce, uint32_t port)');
  const evtchnClose = evt.func('int xenevtchn_close(void *xce)');

  const g = gnttabOpen(null, 0);
  if (!g) throw new Error(`xengnttab_open failed (errno ${koffi.errno()})`);
  console.log(`xengnttab_open -> handle 0x${koffi.address(g).toString(16)}`);
  const rc = gnttabSetMax(g, 128);
  console.log(`xengnttab_set_max_grants(128) -> ${rc}`);
  if (rc !== 0) throw new Error(`xengnttab_set_max_grants failed (errno ${koffi.errno()})`);

  const e = evtchnOpen(null, 0);
  if (!e) throw new Error(`xenevtchn_open failed (errno ${koffi.errno()})`);
  const fd = evtchnFd(e);
  console.log(`xenevtchn_open -> handle 0x${koffi.address(e).toString(16)}, fd ${fd}`);
  const port = evtchnBindUnbound(e, 0);
  console.log(`xenevtchn_bind_unbound_port(0) -> port ${port}`);
  if (port < 0) throw new Error(`xenevtchn_bind_unbound_port failed (errno ${koffi.errno()})`);
  if (evtchnUnbind(e, port) !== 0) throw new Error(`xenevtchn_unbind failed (errno ${koffi.errno()})`);

  if (evtchnClose(e) !== 0 || gnttabClose(g) !== 0) throw new Error('close failed');
  console.log('ffi probe: gnttab and evtchn handles work');
}

try {
  main();
} catch (err) {
  console.log(`ffi probe: ${err.message}`);
  process.exitCode = 1;
}
