# Phase A, multi-page ring: blkfront asks for up to 16 ring pages (backend offers order 4).
. /xentest/domu/steps.sh

run guest-facts 30 guest_facts
run blkfront-load 60 blkfront_load max_ring_page_order=4
run stay-up 5 stay_up
