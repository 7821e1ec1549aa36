// koffi bindings to libxengnttab.so.1 and libxenevtchn.so.1, loaded on first use. Handles are
// opaque pointers; functions report errors through errno (koffi.errno()).
import koffi = require('koffi');

type Fn = ReturnType<koffi.LibraryHandle['func']>;

export interface GnttabLib {
  open: Fn;
  close: Fn;
  setMaxGrants: Fn;
  mapDomainGrantRefs: Fn;
  unmap: Fn;
  grantCopy: Fn;
}

export interface EvtchnLib {
  open: Fn;
  close: Fn;
  fd: Fn;
  bindInterdomain: Fn;
  bindUnboundPort: Fn;
  notify: Fn;
  pending: Fn;
  unmask: Fn;
  unbind: Fn;
}

export const GNTTAB_LIBRARY = 'libxengnttab.so.1';
export const EVTCHN_LIBRARY = 'libxenevtchn.so.1';

const gnttabLibs = new Map<string, GnttabLib>();
const evtchnLibs = new Map<string, EvtchnLib>();

function load(path: string, pkg: string): koffi.LibraryHandle {
  try {
    return koffi.load(path);
  } catch (e) {
    throw new Error(`cannot load ${path}: ${(e as Error).message.split('\n')[0]} (install ${pkg})`);
  }
}

export function gnttabLib(path = GNTTAB_LIBRARY): GnttabLib {
  let lib = gnttabLibs.get(path);
  if (!lib) {
    const l = load(path, 'libxengnttab1');
    lib = {
      open: l.func('void *xengnttab_open(void *logger, unsigned int open_flags)'),
      close: l.func('int xengnttab_close(void *xgt)'),
      setMaxGrants: l.func('int xengnttab_set_max_grants(void *xgt, uint32_t nr_grants)'),
      mapDomainGrantRefs: l.func(
        'void *xengnttab_map_domain_grant_refs(void *xgt, uint32_t count, uint32_t domid, uint32_t *refs, int prot)',
      ),
      unmap: l.func('int xengnttab_unmap(void *xgt, void *start_address, uint32_t count)'),
      grantCopy: l.func('int xengnttab_grant_copy(void *xgt, uint32_t count, void *segs)'),
    };
    gnttabLibs.set(path, lib);
  }
  return lib;
}

export function evtchnLib(path = EVTCHN_LIBRARY): EvtchnLib {
  let lib = evtchnLibs.get(path);
  if (!lib) {
    const l = load(path, 'libxenevtchn1');
    lib = {
      open: l.func('void *xenevtchn_open(void *logger, unsigned int open_flags)'),
      close: l.func('int xenevtchn_close(void *xce)'),
      fd: l.func('int xenevtchn_fd(void *xce)'),
      bindInterdomain: l.func('int xenevtchn_bind_interdomain(void *xce, uint32_t domid, uint32_t remote_port)'),
      bindUnboundPort: l.func('int xenevtchn_bind_unbound_port(void *xce, uint32_t domid)'),
      notify: l.func('int xenevtchn_notify(void *xce, uint32_t port)'),
      pending: l.func('int xenevtchn_pending(void *xce)'),
      unmask: l.func('int xenevtchn_unmask(void *xce, uint32_t port)'),
      unbind: l.func('int xenevtchn_unbind(void *xce, uint32_t port)'),
    };
    evtchnLibs.set(path, lib);
  }
  return lib;
}
