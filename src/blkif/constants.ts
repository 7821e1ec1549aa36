// Wire constants of the blkif protocol (xen/include/public/io/blkif.h).

export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
/** Reserved for a SLES device-specific command; never supported here. */
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_RSP_OKAY = 0;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_EOPNOTSUPP = -2;
export type BlkifStatus = typeof BLKIF_RSP_OKAY | typeof BLKIF_RSP_ERROR | typeof BLKIF_RSP_EOPNOTSUPP;

/** Segments carried inside a direct request. */
export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
/** Grant references of indirect pages carried inside an indirect request. */
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
/** Flag bit of a discard request. */
export const BLKIF_DISCARD_SECURE = 1;

export const XEN_PAGE_SIZE = 4096;
/** Ring sector fields are always in 512-byte units, whatever sector-size says. */
export const SECTOR_SIZE = 512;
export const SECTORS_PER_PAGE = XEN_PAGE_SIZE / SECTOR_SIZE;
/** sizeof(struct blkif_request_segment): gref u32, first_sect u8, last_sect u8, 2 bytes pad. */
export const SEGMENT_SIZE = 8;
/** Segment descriptors in one indirect page. */
export const SEGMENTS_PER_INDIRECT_PAGE = XEN_PAGE_SIZE / SEGMENT_SIZE;
/** The most segments an indirect request can name (8 pages of 512 descriptors). */
export const MAX_INDIRECT_SEGMENTS_WIRE = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * SEGMENTS_PER_INDIRECT_PAGE;

/** max-ring-page-order this implementation accepts (QEMU's and Linux's default). */
export const MAX_RING_PAGE_ORDER = 4;

/** Bits of the backend `info` key. */
export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

/** Values of the frontend `protocol` key (xen/include/public/io/protocols.h). */
export const XEN_IO_PROTO_ABI_X86_32 = 'x86_32-abi';
export const XEN_IO_PROTO_ABI_X86_64 = 'x86_64-abi';
