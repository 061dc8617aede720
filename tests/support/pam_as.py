#!/usr/bin/env python3
"""One login through real libpam (pam_start_confdir) by a process that runs as a setuid-root
helper does: effective uid 0, real uid another account's (polkit-agent-helper-1, sudo, su).
An exec can't make such a process for a test (the loader's secure mode drops the test
runner's LD_PRELOAD), so this script calls libpam itself, after setresuid.

    pam_as.py CONFDIR SERVICE USER RUID [ITEM=VALUE ...] -- [ANSWER ...]

ITEM is ruser, rhost or tty. Each prompt is answered with the next ANSWER. Prints one line per
message ("prompt TEXT", "info TEXT", "error TEXT") and at last "code N" (pam_authenticate's).
"""
import ctypes
import ctypes.util
import os
import sys

PAM_SERVICE, PAM_USER, PAM_TTY, PAM_RHOST, PAM_CONV, PAM_AUTHTOK, PAM_RUSER = 1, 2, 3, 4, 5, 6, 8
ITEMS = {"tty": PAM_TTY, "rhost": PAM_RHOST, "ruser": PAM_RUSER}
PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO = 1, 2, 3, 4


class Message(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class Response(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(ctypes.POINTER(Message)),
    ctypes.POINTER(ctypes.POINTER(Response)),
    ctypes.c_void_p,
)


class Conv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", ctypes.c_void_p)]


def main():
    args = sys.argv[1:]
    sep = args.index("--") if "--" in args else len(args)
    confdir, service, user, ruid = args[0], args[1], args[2], int(args[3])
    items = [a.split("=", 1) for a in args[4:sep]]
    answers = list(args[sep + 1:])
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.calloc.restype = ctypes.c_void_p
    libc.strdup.restype = ctypes.c_void_p
    libc.strdup.argtypes = [ctypes.c_char_p]
    pam = ctypes.CDLL("libpam.so.0")
    pam.pam_start_confdir.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(Conv),
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    pam.pam_set_item.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    pam.pam_authenticate.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pam.pam_end.argtypes = [ctypes.c_void_p, ctypes.c_int]

    # A setuid-root helper started by the account `ruid`: the real uid is theirs.
    os.setresuid(ruid, 0, 0)

    def conv(n, msgs, resp, _data):
        out = libc.calloc(n, ctypes.sizeof(Response))
        cells = ctypes.cast(out, ctypes.POINTER(Response))
        for i in range(n):
            m = msgs[i].contents
            text = (m.msg or b"").decode(errors="replace")
            if m.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                print("prompt " + text, flush=True)
                answer = answers.pop(0) if answers else ""
                cells[i].resp = libc.strdup(answer.encode())
            elif m.msg_style == PAM_ERROR_MSG:
                print("error " + text, flush=True)
            else:
                print("info " + text, flush=True)
        resp[0] = cells
        return 0

    c = Conv(CONV(conv), None)
    h = ctypes.c_void_p()
    rc = pam.pam_start_confdir(service.encode(), user.encode(), ctypes.byref(c),
                               confdir.encode(), ctypes.byref(h))
    if rc != 0:
        print("code start %d" % rc, flush=True)
        sys.exit(1)
    for name, value in items:
        pam.pam_set_item(h, ITEMS[name], value.encode())
    rc = pam.pam_authenticate(h, 0)
    pam.pam_end(h, rc)
    print("code %d" % rc, flush=True)


main()
