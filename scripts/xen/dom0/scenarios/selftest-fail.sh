# Harness self-check, not a product test: this scenario must FAIL, naming must-fail (exit
# status) and must-time-out (timeout), skipping skipped-after-failure. Run it with
#   npm run test:xen -- --scenario selftest-fail
# and expect exit status 1 and "dom0: 6 passed, 2 failed, 1 skipped".
. /xentest/dom0/steps.sh

selftest_false() { echo "this step fails on purpose"; return 3; }
selftest_hang() { echo "this step hangs on purpose"; sleep 600; }

boot_steps
run must-fail 10 selftest_false
run skipped-after-failure 10 true
always must-time-out 5 selftest_hang
always dmesg-clean 30 dmesg_clean
