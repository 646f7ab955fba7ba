"""Run a command as it would run on a CPU without AMX, on a Linux x86-64 machine that has it.

    python benchmarks/without_amx.py COMMAND [ARG...]

A program may use AMX only after asking the kernel for it (`arch_prctl(ARCH_REQ_XCOMP_PERM)`);
llama.cpp asks once and, when refused, leaves its AMX kernels out and runs its AVX-512 ones,
as on an AVX-512 CPU without AMX (Ice Lake, Tiger Lake, Zen 4). This script installs a seccomp
filter that refuses that one request and then runs the command, so that a build compiled for
this machine can be measured as such a CPU would run it (docs/performance.md, "Build").
Everything else the command does is allowed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
NR_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
EPERM = 1
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

# Classic BPF: (code, jump if true, jump if false, constant).
LOAD_WORD, JUMP_IF_EQUAL, RETURN = 0x20, 0x15, 0x06
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH, SECCOMP_DATA_ARG0 = 0, 4, 16
FILTER = (
    (LOAD_WORD, 0, 0, SECCOMP_DATA_ARCH),
    (JUMP_IF_EQUAL, 0, 5, AUDIT_ARCH_X86_64),
    (LOAD_WORD, 0, 0, SECCOMP_DATA_NR),
    (JUMP_IF_EQUAL, 0, 3, NR_ARCH_PRCTL),
    (LOAD_WORD, 0, 0, SECCOMP_DATA_ARG0),
    (JUMP_IF_EQUAL, 0, 1, ARCH_REQ_XCOMP_PERM),
    (RETURN, 0, 0, RET_ERRNO | EPERM),
    (RETURN, 0, 0, RET_ALLOW),
)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def refuse_amx() -> None:
    """From now on, this process and its children are refused AMX by the kernel."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise SystemExit("This only works on Linux x86-64.")
    program = b"".join(struct.pack("<HBBI", *instruction) for instruction in FILTER)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(FILTER), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    refuse_amx()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
