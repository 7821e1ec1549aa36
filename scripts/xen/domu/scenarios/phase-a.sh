# Phase A: the backend only reaches InitWait, so blkfront can't connect; the domU reports
# what it is, starts blkfront and stays up until dom0 destroys it.
. /xentest/domu/steps.sh

run guest-facts 30 guest_facts
run blkfront-load 60 blkfront_load
run stay-up 5 stay_up
