#!/usr/bin/python3
"""Tiny TCP/UDP peers for the veil-iptables traffic tests.

    netpeer.py serve NAME [--transparent] [--udp] ADDR:PORT...
        each TCP connection gets "NAME <local address> <local port>\\n" (for
        a TPROXY listener the local address is the original destination);
        with --udp, datagrams to the same addresses are echoed
    netpeer.py tcp HOST PORT
        prints the first line the server sent, or refused / rejected / reset / timeout
    netpeer.py udp HOST PORT
        sends one datagram; prints the reply, or refused / rejected / timeout
"""

import selectors
import socket
import sys

IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


def listen(host, port, kind, transparent):
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if transparent:
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
        else:
            s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def serve(args):
    name, rest = args[0], args[1:]
    transparent = "--transparent" in rest
    udp = "--udp" in rest
    sel = selectors.DefaultSelector()
    for addr in (a for a in rest if not a.startswith("--")):
        host, port = split(addr)
        sel.register(listen(host, port, socket.SOCK_STREAM, transparent), selectors.EVENT_READ, "tcp")
        if udp:
            sel.register(listen(host, port, socket.SOCK_DGRAM, transparent), selectors.EVENT_READ, "udp")
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "tcp":
                c, _ = s.accept()
                local = c.getsockname()
                try:
                    c.sendall(f"{name} {local[0]} {local[1]}\n".encode())
                except OSError:
                    pass
                c.close()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)


def client(kind, host, port):
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                      socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        if kind == "udp":
            s.send(b"ping")
        data = s.recv(200)
        print(data.decode().strip() if data else "closed")
    except ConnectionRefusedError:
        print("refused")
    except PermissionError:  # a local REJECT/DROP in OUTPUT fails the send itself
        print("rejected")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("timeout")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == "serve":
        serve(sys.argv[2:])
    else:
        client(sys.argv[1], sys.argv[2], sys.argv[3])
