#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check that the kernel's random number generator is ready before making
long-term keys, as the persistent storage assistant does: ask entropy-gate
on the system bus and, if told to, wait for it.

    check_entropy.py [--wait SECONDS]

Prints one line. Exits 0 when ready; 1 when not ready (within SECONDS);
2 when entropy-gate cannot be asked. Refuse to create keys unless 0.
"""

import argparse
import sys
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "org.boum.tails.EntropyGate1"
OBJECT_PATH = "/org/boum/tails/EntropyGate1"
INTERFACE = "org.boum.tails.EntropyGate1"
UNKNOWN_BITS = 2**32 - 1
# A WaitReady call lasts as long as its timeout (or the service's cap): the
# D-Bus call timeout must be longer, GDBus' default of 25 s is not.
CALL_SLACK_MS = 10_000


def get_properties(bus):
    reply = bus.call_sync(
        BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll",
        GLib.Variant("(s)", (INTERFACE,)), GLib.VariantType("(a{sv})"),
        Gio.DBusCallFlags.NONE, -1, None)
    return reply.unpack()[0]


def wait_ready(bus, seconds):
    """Call WaitReady until it says ready or the time is up: the service
    caps each call, so one call may end before the time is up."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        reply = bus.call_sync(
            BUS_NAME, OBJECT_PATH, INTERFACE, "WaitReady",
            GLib.Variant("(t)", (int(left * 1_000_000),)), GLib.VariantType("(b)"),
            Gio.DBusCallFlags.NONE, int(left * 1000) + CALL_SLACK_MS, None)
        if reply.unpack()[0]:
            return True
    return False


def main():
    parser = argparse.ArgumentParser(
        description="Check that the kernel's random number generator is ready.")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help="wait up to SECONDS for it to become ready")
    args = parser.parse_args()
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        props = get_properties(bus)
        ready = props["Ready"]
        if not ready and args.wait > 0:
            ready = wait_ready(bus, args.wait)
            props = get_properties(bus)
    except GLib.Error as e:
        print(f"cannot ask entropy-gate: {e.message}", file=sys.stderr)
        return 2
    if ready:
        print("ready")
        return 0
    avail = props["EntropyAvail"]
    avail = "unknown" if avail == UNKNOWN_BITS else avail
    print(f"not ready: gate {props['GateState']}, "
          f"entropy {avail} of {props['Threshold']} bits")
    return 1


if __name__ == "__main__":
    sys.exit(main())
