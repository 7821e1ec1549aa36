/*
 * A stand-in for libxengnttab.so.1 and libxenevtchn.so.1, for tests on machines without Xen.
 * It includes the real headers, so the compiler checks every prototype against them.
 *
 * Grants: domain 7 owns 64 pages of memory (a memfd); ref r names page r; ref 13 is read-only.
 * Maps really map those pages (MAP_SHARED, with the protection asked for).
 * Event channels: a loopback. Each bound port's peer answers every notify at once; delivery
 * masks the port until unmask, like /dev/xen/evtchn. The handle's fd is a non-blocking pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xengnttab.h>
#include <xenevtchn.h>

#define PAGES 64
#define RO_REF 13
#define GUEST 7

static int memfd = -1;
static unsigned char *guest_mem;

int fake_open_errno;
int fake_copy_fail_errno;
int fake_last_copy_count;
int fake_max_grants;
int fake_last_prot;
int fake_live_maps;

static int guest_init(void) {
    if (memfd >= 0) return 0;
    memfd = memfd_create("fake-guest", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, PAGES * 4096) < 0) return -1;
    guest_mem = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    return guest_mem == MAP_FAILED ? -1 : 0;
}

unsigned char *fake_page(uint32_t ref) { return guest_init() ? NULL : guest_mem + (size_t)ref * 4096; }

struct xengntdev_handle { int unused; };

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags) {
    (void)logger; (void)open_flags;
    if (fake_open_errno) { errno = fake_open_errno; return NULL; }
    if (guest_init()) return NULL;
    return calloc(1, sizeof(xengnttab_handle));
}

int xengnttab_close(xengnttab_handle *xgt) { free(xgt); return 0; }

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants) {
    (void)xgt; fake_max_grants = (int)nr_grants; return 0;
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count, uint32_t domid,
                                      uint32_t *refs, int prot) {
    (void)xgt;
    fake_last_prot = prot;
    if (domid != GUEST) { errno = ESRCH; return NULL; }
    for (uint32_t i = 0; i < count; i++)
        if (refs[i] >= PAGES || ((prot & PROT_WRITE) && refs[i] == RO_REF)) { errno = EINVAL; return NULL; }
    unsigned char *area = mmap(NULL, (size_t)count * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return NULL;
    for (uint32_t i = 0; i < count; i++)
        if (mmap(area + (size_t)i * 4096, 4096, prot, MAP_SHARED | MAP_FIXED, memfd, (off_t)refs[i] * 4096) == MAP_FAILED)
            return NULL;
    fake_live_maps++;
    return area;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count) {
    (void)xgt;
    if (start_address == NULL) { errno = EINVAL; return -1; }
    if (munmap(start_address, (size_t)count * 4096)) return -1;
    fake_live_maps--;
    return 0;
}

int xengnttab_grant_copy(xengnttab_handle *xgt, uint32_t count, xengnttab_grant_copy_segment_t *segs) {
    (void)xgt;
    fake_last_copy_count = (int)count;
    if (fake_copy_fail_errno) { errno = fake_copy_fail_errno; return -1; }
    for (uint32_t i = 0; i < count; i++) {
        xengnttab_grant_copy_segment_t *s = &segs[i];
        int to_guest = (s->flags & GNTCOPY_dest_gref) != 0;
        int from_guest = (s->flags & GNTCOPY_source_gref) != 0;
        if (to_guest == from_guest) { s->status = GNTST_general_error; continue; }
        uint32_t ref = to_guest ? s->dest.foreign.ref : s->source.foreign.ref;
        uint16_t off = to_guest ? s->dest.foreign.offset : s->source.foreign.offset;
        uint16_t dom = to_guest ? s->dest.foreign.domid : s->source.foreign.domid;
        if (dom != GUEST) { s->status = GNTST_bad_domain; continue; }
        if (ref >= PAGES) { s->status = GNTST_bad_gntref; continue; }
        if (to_guest && ref == RO_REF) { s->status = GNTST_general_error; continue; }
        if (off + s->len > 4096) { s->status = GNTST_bad_copy_arg; continue; }
        unsigned char *g = guest_mem + (size_t)ref * 4096 + off;
        if (to_guest) memcpy(g, s->source.virt, s->len);
        else memcpy(s->dest.virt, g, s->len);
        s->status = GNTST_okay;
    }
    return 0;
}

/* ---- event channels ---- */

#define NPORTS 64
struct xenevtchn_handle { int rfd, wfd; int next; };
static struct xenevtchn_handle *last;
static unsigned char bound[NPORTS], masked[NPORTS], pend[NPORTS];
int fake_unmasks[NPORTS];
int fake_notifies[NPORTS];
int fake_unbinds;

static void raise_port(xenevtchn_handle *x, uint32_t port) {
    if (masked[port]) { pend[port] = 1; return; }
    masked[port] = 1;
    (void)!write(x->wfd, &port, sizeof port);
}

void fake_evtchn_inject(uint32_t port) { if (last && port < NPORTS && bound[port]) raise_port(last, port); }

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned open_flags) {
    (void)logger; (void)open_flags;
    if (fake_open_errno) { errno = fake_open_errno; return NULL; }
    xenevtchn_handle *x = calloc(1, sizeof *x);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) return NULL;
    x->rfd = fds[0]; x->wfd = fds[1]; x->next = 10;
    memset(bound, 0, sizeof bound); memset(masked, 0, sizeof masked); memset(pend, 0, sizeof pend);
    memset(fake_unmasks, 0, sizeof fake_unmasks); memset(fake_notifies, 0, sizeof fake_notifies);
    fake_unbinds = 0;
    last = x;
    return x;
}

int xenevtchn_close(xenevtchn_handle *xce) { close(xce->rfd); close(xce->wfd); if (last == xce) last = NULL; free(xce); return 0; }
int xenevtchn_fd(xenevtchn_handle *xce) { return xce->rfd; }

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid, evtchn_port_t remote_port) {
    if (domid == 99) { errno = ESRCH; return -1; }
    if (remote_port == 0 || xce->next >= NPORTS) { errno = EINVAL; return -1; }
    uint32_t p = (uint32_t)xce->next++;
    bound[p] = 1;
    raise_port(xce, p); /* Xen raises a newly bound interdomain port */
    return (xenevtchn_port_or_error_t)p;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce, uint32_t domid) {
    (void)domid;
    uint32_t p = (uint32_t)xce->next++;
    bound[p] = 1;
    return (xenevtchn_port_or_error_t)p;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port) {
    if (port >= NPORTS || !bound[port]) { errno = EINVAL; return -1; }
    fake_notifies[port]++;
    raise_port(xce, port); /* the loopback peer answers at once */
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce) {
    uint32_t p;
    if (read(xce->rfd, &p, sizeof p) != sizeof p) return -1;
    return (xenevtchn_port_or_error_t)p;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port) {
    if (port >= NPORTS) { errno = EINVAL; return -1; }
    fake_unmasks[port]++;
    masked[port] = 0;
    if (pend[port]) { pend[port] = 0; raise_port(xce, port); }
    return 0;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port) {
    (void)xce;
    if (port >= NPORTS || !bound[port]) { errno = EINVAL; return -1; }
    bound[port] = 0;
    fake_unbinds++;
    return 0;
}
