/*
 * Prints, as JSON, the layout of the blkif structures as the C compiler lays them out from Xen's
 * own public headers (Debian libxen-dev), plus sample slots written through those structures.
 * Built twice by the tests: natively (x86_64) and with -DPACK4, which packs like the i386 ABI
 * (u64 aligned to 4), as QEMU's xen_blkif.h does for its x86_32 structures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifdef PACK4
#pragma pack(push, 4)
#endif
#include <xen/xen.h>
#include <xen/io/blkif.h>
#ifdef PACK4
#pragma pack(pop)
#endif

#define OFF(t, f) printf("\"%s\":%zu,", #f, offsetof(t, f))

static void hex(const char *name, const void *p, size_t n, int comma)
{
    const unsigned char *b = p;
    printf("\"%s\":\"", name);
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\"%s", comma ? "," : "");
}

int main(void)
{
    unsigned char slot[sizeof(union blkif_sring_entry)];

    printf("{\"req\":{");
    OFF(struct blkif_request, operation);
    OFF(struct blkif_request, nr_segments);
    OFF(struct blkif_request, handle);
    OFF(struct blkif_request, id);
    OFF(struct blkif_request, sector_number);
    OFF(struct blkif_request, seg);
    printf("\"size\":%zu},", sizeof(struct blkif_request));

    printf("\"seg\":{");
    OFF(struct blkif_request_segment, gref);
    OFF(struct blkif_request_segment, first_sect);
    OFF(struct blkif_request_segment, last_sect);
    printf("\"size\":%zu},", sizeof(struct blkif_request_segment));

    printf("\"discard\":{");
    OFF(struct blkif_request_discard, operation);
    OFF(struct blkif_request_discard, flag);
    OFF(struct blkif_request_discard, handle);
    OFF(struct blkif_request_discard, id);
    OFF(struct blkif_request_discard, sector_number);
    OFF(struct blkif_request_discard, nr_sectors);
    printf("\"size\":%zu},", sizeof(struct blkif_request_discard));

    printf("\"indirect\":{");
    OFF(struct blkif_request_indirect, operation);
    OFF(struct blkif_request_indirect, indirect_op);
    OFF(struct blkif_request_indirect, nr_segments);
    OFF(struct blkif_request_indirect, id);
    OFF(struct blkif_request_indirect, sector_number);
    OFF(struct blkif_request_indirect, handle);
    OFF(struct blkif_request_indirect, indirect_grefs);
    printf("\"size\":%zu},", sizeof(struct blkif_request_indirect));

    printf("\"rsp\":{");
    OFF(struct blkif_response, id);
    OFF(struct blkif_response, operation);
    OFF(struct blkif_response, status);
    printf("\"size\":%zu},", sizeof(struct blkif_response));

    printf("\"sring\":{");
    OFF(struct blkif_sring, req_prod);
    OFF(struct blkif_sring, req_event);
    OFF(struct blkif_sring, rsp_prod);
    OFF(struct blkif_sring, rsp_event);
    OFF(struct blkif_sring, ring);
    printf("\"entry\":%zu},", sizeof(union blkif_sring_entry));

    printf("\"entries\":[%u,%u,%u,%u,%u],",
           (unsigned)__CONST_RING_SIZE(blkif, 4096), (unsigned)__CONST_RING_SIZE(blkif, 2 * 4096),
           (unsigned)__CONST_RING_SIZE(blkif, 4 * 4096), (unsigned)__CONST_RING_SIZE(blkif, 8 * 4096),
           (unsigned)__CONST_RING_SIZE(blkif, 16 * 4096));

    printf("\"constants\":{\"READ\":%d,\"WRITE\":%d,\"WRITE_BARRIER\":%d,\"FLUSH_DISKCACHE\":%d,"
           "\"DISCARD\":%d,\"INDIRECT\":%d,\"MAX_SEGMENTS\":%d,\"MAX_INDIRECT_PAGES\":%d,"
           "\"DISCARD_SECURE\":%d,\"RSP_OKAY\":%d,\"RSP_ERROR\":%d,\"RSP_EOPNOTSUPP\":%d},",
           BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE,
           BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, BLKIF_MAX_SEGMENTS_PER_REQUEST,
           BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_DISCARD_SECURE, BLKIF_RSP_OKAY,
           BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP);

    /* Sample slots, values as in test/blkif/layout.test.ts. */
    printf("\"samples\":{");
    memset(slot, 0, sizeof(slot));
    {
        struct blkif_request *r = (void *)slot;
        r->operation = BLKIF_OP_WRITE;
        r->nr_segments = 11;
        r->handle = 0xCAFE;
        r->id = 0x0123456789ABCDEFULL;
        r->sector_number = 0x00000102A0B0C0D0ULL;
        for (int i = 0; i < 11; i++) {
            r->seg[i].gref = 0x10000000u + (unsigned)i * 0x01010101u;
            r->seg[i].first_sect = (uint8_t)(i % 8);
            r->seg[i].last_sect = 7;
        }
    }
    hex("rw", slot, sizeof(slot), 1);
    memset(slot, 0, sizeof(slot));
    {
        struct blkif_request_discard *d = (void *)slot;
        d->operation = BLKIF_OP_DISCARD;
        d->flag = BLKIF_DISCARD_SECURE;
        d->handle = 0x0203;
        d->id = 0xFEDCBA9876543210ULL;
        d->sector_number = 0x0000000100000200ULL;
        d->nr_sectors = 0x0000000300000004ULL;
    }
    hex("discard", slot, sizeof(slot), 1);
    memset(slot, 0, sizeof(slot));
    {
        struct blkif_request_indirect *x = (void *)slot;
        x->operation = BLKIF_OP_INDIRECT;
        x->indirect_op = BLKIF_OP_READ;
        x->nr_segments = 0x0FED;
        x->id = 0x1122334455667788ULL;
        x->sector_number = 0x0000000A0000000BULL;
        x->handle = 0x5150;
        for (int i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
            x->indirect_grefs[i] = 0xA0000000u + (unsigned)i;
    }
    hex("indirect", slot, sizeof(slot), 1);
    memset(slot, 0, sizeof(slot));
    {
        struct blkif_response *p = (void *)slot;
        p->id = 0x8877665544332211ULL;
        p->operation = BLKIF_OP_FLUSH_DISKCACHE;
        p->status = BLKIF_RSP_EOPNOTSUPP;
    }
    hex("rsp", slot, sizeof(struct blkif_response), 0);
    printf("}}\n");
    return 0;
}
