"""Drive Skrytka's IMAP server with Python's imaplib (a client no one here
wrote). Usage: imaplib_client.py HOST PORT USER PASSWORD. Exits non-zero
with a message on the first surprise."""
import base64
import imaplib
import re
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def mutf7(s):
    """RFC 3501 §5.1.3 modified UTF-7."""
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def ok(res, what):
    typ, data = res
    check(typ == "OK", "%s: %r %r" % (what, typ, data))
    return data


def q(name):
    return '"' + name + '"'


M = imaplib.IMAP4(host, port)
ok(M.login(user, password), "login")
check("IDLE" in M.capabilities, "IDLE capability")

# Folders with hierarchy and non-ASCII names.
ok(M.create("Work/Reports/2026"), "create hierarchy")
ru = mutf7("Почта/Входящие")
ok(M.create(q(ru)), "create non-ASCII")
names = ok(M.list('""', "*"), "list")
text = b"\n".join(names).decode()
check('"Work/Reports/2026"' in text or " Work/Reports/2026" in text, "hierarchy listed: " + text)
check(ru in text, "non-ASCII name listed in modified UTF-7: " + text)
kids = ok(M.list("Work/", "%"), "list %")
check(len(kids) == 1 and b"Work/Reports" in kids[0] and b"\\HasChildren" in kids[0], "list %%: %r" % kids)

# APPEND with flags and date.
msg = (
    "From: Ann <ann@example.org>\r\nTo: you@example.com\r\nSubject: Budget 2026\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n"
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Die Zahlen f=C3=BCr M=C3=A4rz.\r\n"
    "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Zahlen</p>\r\n--b1--\r\n"
)
typ, data = M.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg.encode())
check(typ == "OK" and b"APPENDUID" in data[0], "append: %r" % data)
M.append(q(ru), None, None, b"Subject: hello\r\n\r\nprivet\r\n")

typ, data = M.select("INBOX")
check(typ == "OK" and data[0] == b"1", "select: %r" % data)

# SEARCH (text is decoded: "für" is quoted-printable in the message).
data = ok(M.search("UTF-8", "BODY", '"f\xfcr"'.encode("utf-8")), "search body")
check(data == [b"1"], "search body result %r" % data)
data = ok(M.search(None, "FLAGGED", "SUBJECT", "budget"), "search subject")
check(data == [b"1"], "search subject %r" % data)
data = ok(M.uid("SEARCH", "UNSEEN"), "uid search")
check(data == [b"1"], "uid search %r" % data)

# FETCH of parts.
data = ok(M.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODYSTRUCTURE)"), "fetch parts")
check(data[0][1] == b"Die Zahlen f=C3=BCr M=C3=A4rz.", "part 1: %r" % (data[0],))
check(data[1][1].startswith(b"Content-Type: text/html"), "2.MIME: %r" % (data[1],))
check(data[2][1] == b"Subject: Budget 2026\r\n\r\n", "header fields: %r" % (data[2],))
check(b'"alternative"' in data[3] or b'"ALTERNATIVE"' in data[3], "bodystructure: %r" % (data[3],))
data = ok(M.fetch("1", "(FLAGS)"), "flags")
check(b"\\Seen" not in data[0], "peek must not set \\Seen: %r" % data)
data = ok(M.fetch("1", "(RFC822)"), "fetch rfc822")
check(data[0][1] == msg.encode(), "whole message round-trips")
data = ok(M.fetch("1", "(FLAGS)"), "flags after")
check(b"\\Seen" in data[0], "RFC822 sets \\Seen: %r" % data)

# COPY, MOVE, STORE, EXPUNGE.
typ, data = M.copy("1", "Work/Reports/2026")
check(typ == "OK", "copy %r" % data)
typ, data = M._simple_command("MOVE", "1", q(ru))
check(typ == "OK", "move %r" % data)
typ, data = M.select(q(ru))
check(data[0] == b"2", "after move: %r" % data)
ok(M.store("1", "+FLAGS", "(\\Deleted)"), "store")
data = ok(M.expunge(), "expunge")
check(data == [b"1"], "expunge response %r" % data)
typ, data = M.status(q(ru), "(MESSAGES)")
check(b"MESSAGES 1" in data[0], "status %r" % data)

# IDLE sees a delivery made by another session.
ok(M.select("INBOX"), "select inbox")
tag = M._new_tag().decode()
M.send(("%s IDLE\r\n" % tag).encode())
line = M.readline()
check(line.startswith(b"+"), "idle continuation %r" % line)
N = imaplib.IMAP4(host, port)
ok(N.login(user, password), "login 2")
ok(N.append("INBOX", None, None, b"Subject: new mail\r\n\r\nhi\r\n"), "append 2")
line = M.readline()
check(line == b"* 1 EXISTS\r\n", "IDLE got %r" % line)
M.send(b"DONE\r\n")
while True:
    line = M.readline()
    if line.startswith(tag.encode()):
        check(b"OK" in line, "idle done %r" % line)
        break
N.logout()
M.logout()
print("imaplib: all checks passed")
