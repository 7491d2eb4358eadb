#!/bin/sh
# Runs as root inside a scripts/vm matrix guest; $1 selects the payload:
#   smoke  print SMOKE key=value lines (nsprim imports, pid and user namespaces work)
#   suite  run the conformance suite as root and as nobody, then the nsprim ls probe
#          (nsprim.conformance.lsprobe); reports go to /mnt/out
#   none   do nothing (boot test)
#   sshd   serve SSH for an Ansible fleet run (scripts/vm/fleet): the NIC is qemu's
#          user-mode network with restrict=on (no way out of the VM) and only
#          127.0.0.1:<port> on the host forwarded to port 22; root logs in with the key
#          the host put in /mnt/out/authorized_keys; the guest powers off once the host
#          creates /mnt/out/stop (or after nsttl= seconds from the kernel cmdline).
# The checkout is read-only at /mnt/host. nsprim is not installed in the guest: its
# nsprim/ and conformance/ folders are copied into a tmpfs laid out like an installed
# package (site/nsprim, site/nsprim/conformance) and put on PYTHONPATH.
# dash has no pipefail; no -e either: each run's status is recorded, not fatal.
set -u
host=/mnt/host
out=/mnt/out
site=/tmp/site

make_site() {
    mkdir -p "$site"
    cp -r "$host/nsprim" "$site/nsprim"
    rm -rf "$site/nsprim/conformance"
    cp -r "$host/conformance" "$site/nsprim/conformance"
    find "$site" -name __pycache__ -prune -exec rm -rf {} +
    chmod -R a+rX "$site"
    export PYTHONPATH="$site" PYTHONDONTWRITEBYTECODE=1
}

as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}

case "${1:-smoke}" in
none)
    exit 0
    ;;
smoke)
    make_site
    echo "SMOKE release=$(uname -r)"
    echo "SMOKE import=$(python3 -c 'import nsprim, tabulate; print("ok", nsprim.__version__)' 2>&1)"
    echo "SMOKE pidns_pid=$(unshare --pid --fork --mount-proc sh -c 'echo $$' 2>&1)"
    echo "SMOKE userns_uid=$(as_nobody unshare --user --map-root-user id -u 2>&1)"
    # On-demand module loading works (veth is a module in Debian's kernels).
    echo "SMOKE veth=$(unshare --net sh -c 'ip link add nsv0 type veth peer name nsv1 && echo ok' 2>&1)"
    echo "SMOKE nobody_import=$(as_nobody python3 -c 'import nsprim.conformance; print("ok")' 2>&1)"
    printf 'SMOKE ns='
    for f in /proc/self/ns/*; do printf '%s ' "${f##*/}"; done
    echo
    exit 0
    ;;
suite)
    make_site
    # TCG emulation on one vCPU is several times slower than the hardware the checks'
    # timeouts are set for (as LTP_TIMEOUT_MUL does for LTP); nstimeoutmul= overrides.
    export NSPRIM_TIMEOUT_MUL="${nstimeoutmul:-4}"
    reports=/tmp/reports
    mkdir -p "$reports"
    chmod 1777 "$reports"
    status=0
    for who in root user; do
        if [ "$who" = user ]; then set -- --as-user nobody; else set --; fi
        # nscontrols=1 on the kernel cmdline: also run each check's negative control.
        if [ "${nscontrols:-0}" = 1 ]; then set -- "$@" --controls; fi
        # nsrepeat=N: every check N times; a verdict that changes is a defect (exit 1).
        if [ "${nsrepeat:-1}" -gt 1 ] 2>/dev/null; then set -- "$@" --repeat "$nsrepeat"; fi
        start=$(date +%s)
        (cd / && python3 -m nsprim.conformance --format json "$@" -o "$reports/$who.json") \
            >"$reports/$who.log" 2>&1
        rc=$?
        echo "NSPRIM-RUN $who rc=$rc seconds=$(($(date +%s) - start))"
        echo "$rc" >"$out/$who.rc"
        cp "$reports/$who.log" "$out/$who.log"
        if [ -s "$reports/$who.json" ]; then
            cp "$reports/$who.json" "$out/$who.json"
        else
            echo "NSPRIM-NOREPORT $who"
            tail -n 5 "$reports/$who.log"
            status=1
        fi
    done
    # What nsprim ls finds on this kernel: namespaces planted held each way, then a
    # scan (nsprim.conformance.lsprobe; a few seconds). Its JSON goes next to the reports.
    start=$(date +%s)
    (cd / && python3 -m nsprim.conformance.lsprobe -o "$reports/ls.json") \
        >"$reports/ls.log" 2>&1
    echo "NSPRIM-LSPROBE rc=$? seconds=$(($(date +%s) - start))"
    cp "$reports/ls.log" "$out/ls.log"
    if [ -s "$reports/ls.json" ]; then
        cp "$reports/ls.json" "$out/ls.json"
    else
        echo "NSPRIM-NOREPORT ls"
        tail -n 5 "$reports/ls.log"
    fi
    exit "$status"
    ;;
sshd)
    # Debian builds virtio_net as a module; the initramfs loads only the 9p ones.
    modprobe virtio_net 2>/dev/null
    dev=
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        dev=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
        [ -n "$dev" ] && break
        sleep 1
    done
    if [ -z "$dev" ]; then
        echo "guest-payload: no network device (is virtio_net in the kernel?)" >&2
        exit 1
    fi
    # qemu's user-mode network: fixed guest address, the host only reaches it through
    # the 127.0.0.1 port forward; restrict=on drops everything the guest sends out.
    ip link set "$dev" up
    ip addr add 10.0.2.15/24 dev "$dev"
    mkdir -p /root/.ssh /run/sshd
    chmod 700 /root/.ssh
    cp "$out/authorized_keys" /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    ssh-keygen -A >/dev/null
    /usr/sbin/sshd -o PermitRootLogin=prohibit-password -o UseDNS=no -o PasswordAuthentication=no
    echo "NSPRIM-SSHD-READY"
    ttl=${nsttl:-1800}
    while [ ! -e "$out/stop" ] && [ "$ttl" -gt 0 ]; do
        sleep 1
        ttl=$((ttl - 1))
    done
    exit 0
    ;;
*)
    echo "guest-payload: unknown payload ${1}" >&2
    exit 2
    ;;
esac
