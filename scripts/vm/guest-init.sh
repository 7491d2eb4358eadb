#!/bin/sh
# PID 1 of a scripts/vm matrix guest (after switch_root): set up a minimal system like
# the one a distribution boots (tmpfs, devpts, cgroup2, lo up), run the payload named by
# nspayload= on the kernel cmdline, print the exit marker, power off.
# The host parses NSPRIM-BEGIN / NSPRIM-EXIT=<rc> on the serial console.
# No "set -e": PID 1 must always reach the power-off at the end.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up 2>/dev/null
hostname nsprim-guest

echo "NSPRIM-BEGIN"
rc=0
sh /mnt/host/scripts/vm/guest-payload.sh "${nspayload:-smoke}" || rc=$?
sync
umount /mnt/out 2>/dev/null
echo "NSPRIM-EXIT=$rc"
# ACPI power-off via sysrq: works without systemd; qemu (-no-reboot) then exits.
echo o >/proc/sysrq-trigger
sleep 10
