// The backend `info` node: VDISK_* bits (xen/include/public/io/blkif.h).

export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

export interface VdiskFlags {
  readonly cdrom: boolean;
  readonly removable: boolean;
  readonly readOnly: boolean;
}

export function infoBits(flags: VdiskFlags): number {
  return (flags.cdrom ? VDISK_CDROM : 0) | (flags.removable ? VDISK_REMOVABLE : 0) | (flags.readOnly ? VDISK_READONLY : 0);
}

export function infoFlags(bits: number): VdiskFlags {
  return {
    cdrom: (bits & VDISK_CDROM) !== 0,
    removable: (bits & VDISK_REMOVABLE) !== 0,
    readOnly: (bits & VDISK_READONLY) !== 0,
  };
}
