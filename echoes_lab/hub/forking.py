"""What a forked child needs to look like a process started with ``exec``.

Two fork servers start processes from an interpreter that imported what they run once: the
hub's services (:mod:`echoes_lab.hub.launch.zygote`) and the gateway's schedulers and workers
(:mod:`echoes_lab.hub.services.gateway.forkserver`). Both point the kernel's view of a child
(``/proc/PID/cmdline``, ``/proc/PID/environ``) at the command and environment ``exec`` would
have given it, because the launcher, operators, ``benchmarks/memory.py`` and the tests find
processes by them. This module imports nothing but the standard library: the gateway's fork
server imports it before anything else.

References: prctl(2) (``PR_SET_MM_MAP``, ``PR_SET_DUMPABLE``, ``PR_SET_PDEATHSIG``,
``PR_SET_NAME``), proc(5) (``/proc/PID/stat``'s fields).
"""

from __future__ import annotations

import ctypes
import errno
import os

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME, PR_SET_MM = 1, 4, 15, 35
_PR_SET_MM_MAP = 14
#: the command lines and environments /proc shows: must live as long as the process does
_SHOWN: list = []


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int | bytes) -> None:
    """``prctl(option, arg)``; ``arg`` an integer or, for ``PR_SET_NAME``, bytes."""
    value = ctypes.c_char_p(arg) if isinstance(arg, bytes) else ctypes.c_ulong(arg)
    if _libc().prctl(ctypes.c_int(option), value, ctypes.c_ulong(0), ctypes.c_ulong(0),
                     ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


class _MMMap(ctypes.Structure):
    """``struct prctl_mm_map`` (linux/prctl.h)."""

    _fields_ = [*((name, ctypes.c_uint64) for name in (
        "start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
        "arg_start", "arg_end", "env_start", "env_end", "auxv")),
        ("auxv_size", ctypes.c_uint32), ("exe_fd", ctypes.c_uint32)]


def show_in_proc(argv: list[str], env: dict[str, str]) -> None:
    """Point ``/proc/PID/cmdline`` and ``/proc/PID/environ`` of this process at ``argv`` and
    ``env``, as after ``exec``; raise :class:`OSError` if the kernel refuses.

    ``prctl(PR_SET_MM, PR_SET_MM_MAP)`` (Linux >= 3.18 with checkpoint/restore; no capability
    needed while the executable stays the same) replaces the whole memory map description:
    every other field is given its current value (``/proc/self/stat``; the program break from
    ``sbrk(0)``). The break is the one value that can move meanwhile (a ``malloc`` growing the
    heap): it is read again after the call, and the call repeated until both agree.
    """
    args = b"".join(os.fsencode(a) + b"\0" for a in argv)
    envs = b"".join(os.fsencode(f"{k}={v}") + b"\0" for k, v in env.items())
    buf = ctypes.create_string_buffer(args + envs, len(args) + len(envs))
    _SHOWN.append(buf)
    start = ctypes.addressof(buf)
    with open("/proc/self/stat", "rb") as f:
        stat = f.read().rsplit(b")", 1)[1].split()

    def field(n: int) -> int:  # proc(5) numbers the fields from 1; (1) and (2) are cut off
        return int(stat[n - 3])

    mm = _MMMap(start_code=field(26), end_code=field(27), start_stack=field(28),
                start_data=field(45), end_data=field(46), start_brk=field(47),
                arg_start=start, arg_end=start + len(args), env_start=start + len(args),
                env_end=start + len(args) + len(envs), auxv=0, auxv_size=0, exe_fd=0xFFFFFFFF)
    libc = _libc()
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_long]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    where, size = ctypes.addressof(mm), ctypes.sizeof(mm)
    prctl_, sbrk = libc.prctl, libc.sbrk  # nothing allocated between reading the break and the call
    for _ in range(5):
        mm.brk = sbrk(0)
        if prctl_(PR_SET_MM, _PR_SET_MM_MAP, where, size, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        if sbrk(0) == mm.brk:
            return
    msg = "the program break kept moving"
    raise OSError(errno.EAGAIN, msg)
