/* Prints the ABI facts the TypeScript bindings hard-code, from the installed Xen headers. */
#include <stddef.h>
#include <stdio.h>
#include <xengnttab.h>

#define F(name, value) printf("%s\"%s\": %ld", first ? "" : ", ", name, (long)(value)), first = 0

int main(void) {
    int first = 1;
    printf("{");
    F("size", sizeof(xengnttab_grant_copy_segment_t));
    F("align", _Alignof(xengnttab_grant_copy_segment_t));
    F("source", offsetof(xengnttab_grant_copy_segment_t, source));
    F("dest", offsetof(xengnttab_grant_copy_segment_t, dest));
    F("foreign_ref", offsetof(xengnttab_grant_copy_segment_t, source.foreign.ref));
    F("foreign_offset", offsetof(xengnttab_grant_copy_segment_t, source.foreign.offset));
    F("foreign_domid", offsetof(xengnttab_grant_copy_segment_t, source.foreign.domid));
    F("len", offsetof(xengnttab_grant_copy_segment_t, len));
    F("flags", offsetof(xengnttab_grant_copy_segment_t, flags));
    F("status", offsetof(xengnttab_grant_copy_segment_t, status));
    F("GNTCOPY_source_gref", GNTCOPY_source_gref);
    F("GNTCOPY_dest_gref", GNTCOPY_dest_gref);
    F("GTF_permit_access", GTF_permit_access);
    F("GTF_type_mask", GTF_type_mask);
    F("GTF_readonly", GTF_readonly);
    F("GTF_reading", GTF_reading);
    F("GTF_writing", GTF_writing);
    F("entry_v1_size", sizeof(grant_entry_v1_t));
    F("entry_v1_flags", offsetof(grant_entry_v1_t, flags));
    F("entry_v1_domid", offsetof(grant_entry_v1_t, domid));
    F("entry_v1_frame", offsetof(grant_entry_v1_t, frame));
    F("GNTST_okay", GNTST_okay);
    F("GNTST_general_error", GNTST_general_error);
    F("GNTST_bad_domain", GNTST_bad_domain);
    F("GNTST_bad_gntref", GNTST_bad_gntref);
    F("GNTST_bad_handle", GNTST_bad_handle);
    F("GNTST_bad_virt_addr", GNTST_bad_virt_addr);
    F("GNTST_bad_dev_addr", GNTST_bad_dev_addr);
    F("GNTST_no_device_space", GNTST_no_device_space);
    F("GNTST_permission_denied", GNTST_permission_denied);
    F("GNTST_bad_page", GNTST_bad_page);
    F("GNTST_bad_copy_arg", GNTST_bad_copy_arg);
    F("GNTST_address_too_big", GNTST_address_too_big);
    F("GNTST_eagain", GNTST_eagain);
    printf("}\n");
    return 0;
}
