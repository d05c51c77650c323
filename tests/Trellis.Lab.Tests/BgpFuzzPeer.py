#!/usr/bin/env python3
# A misbehaving BGP peer for the lab tests: OPEN, KEEPALIVE, then an UPDATE whose ORIGIN is 7 (RFC 4271
# allows 0-2). Prints the NOTIFICATION it gets back as "notification CODE SUBCODE".
import socket, struct, sys
src, dst, asn = sys.argv[1], sys.argv[2], int(sys.argv[3])
def msg(t, body): return b'\xff' * 16 + struct.pack('!HB', 19 + len(body), t) + body
s = socket.socket()
s.bind((src, 0)); s.settimeout(10); s.connect((dst, 179))
s.sendall(msg(1, struct.pack('!BHH4sB', 4, asn, 9, socket.inet_aton(src), 0)))
def read():
    h = b''
    while len(h) < 19:
        c = s.recv(19 - len(h))
        if not c: raise SystemExit('closed')
        h += c
    n, t = struct.unpack('!HB', h[16:19]); b = b''
    while len(b) < n - 19: b += s.recv(n - 19 - len(b))
    return t, b
t, _ = read(); assert t == 1, t
s.sendall(msg(4, b''))
attrs = bytes([0x40, 1, 1, 7]) + bytes([0x40, 2, 0]) + bytes([0x40, 3, 4]) + socket.inet_aton(src)
nlri = bytes([24, 10, 66, 1])
while True:
    t, b = read()
    if t == 4:
        s.sendall(msg(2, struct.pack('!H', 0) + struct.pack('!H', len(attrs)) + attrs + nlri))
    elif t == 3:
        print('notification', b[0], b[1]); break
