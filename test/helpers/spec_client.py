"""A canvascast viewer written from docs/protocol.md and RFC 6455 alone, in another language than
the server and the player, doing only what the spec obliges: it answers pings (every WebSocket
client must), and sends acks only if asked to. It reads its socket at a fixed byte rate, as a slow
link would deliver it, optionally through a small kernel receive buffer, and may stop reading for
a while (a stall).

Output: one JSON line per event on stdout ({"ev":"text"|"bin"|"close"|"end", "at": ms since the
epoch, ...}); the payload of every binary message goes to --data as u32 little-endian length + bytes.

Run with Debian's /usr/bin/python3; it needs nothing beyond the standard library.
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time


def now_ms():
    return time.time() * 1000.0


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def client_frame(opcode, payload):
    """A masked client frame (RFC 6455 section 5.3: every client frame is masked)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--rate", type=float, required=True, help="bytes per second read from the socket")
    ap.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF in bytes (0: the kernel's default, autotuned)")
    ap.add_argument("--ack-ms", type=int, default=0, help="ack the newest frame every N ms while frames arrive (0: never)")
    ap.add_argument("--duration", type=float, required=True, help="seconds to run")
    ap.add_argument("--stall-at", type=float, default=-1, help="stop reading this many seconds after opening")
    ap.add_argument("--stall-for", type=float, default=0)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf > 0:
        # Before connect, so that the window the kernel offers is small from the handshake on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.connect((args.host, args.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(1)  # byte by byte: nothing of the stream is read past the handshake here
        if not chunk:
            emit({"ev": "close", "at": now_ms(), "code": None, "reason": "handshake: connection closed"})
            return
        buf += chunk
    status = buf.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status + " ":
        emit({"ev": "close", "at": now_ms(), "code": None, "reason": status})
        return
    opened = time.monotonic()
    emit({"ev": "open", "at": now_ms()})
    sock.setblocking(False)

    data = open(args.data, "wb")
    rate = args.rate
    budget = 0.0
    burst = max(2048.0, rate / 20)
    last_refill = time.monotonic()
    pending = b""
    newest_seq = None
    acked_seq = None
    last_ack = time.monotonic()
    closed = False
    while not closed:
        t = time.monotonic()
        elapsed = t - opened
        if elapsed >= args.duration:
            break
        budget = min(burst, budget + (t - last_refill) * rate)
        last_refill = t
        stalled = args.stall_at >= 0 and args.stall_at <= elapsed < args.stall_at + args.stall_for
        if stalled:
            budget = 0.0
        if args.ack_ms > 0 and newest_seq is not None and newest_seq != acked_seq and (t - last_ack) * 1000 >= args.ack_ms:
            sock.setblocking(True)
            sock.sendall(client_frame(0x1, json.dumps({"type": "ack", "seq": newest_seq}).encode()))
            sock.setblocking(False)
            acked_seq = newest_seq
            last_ack = t
        if budget < 1 or stalled:
            time.sleep(0.005)
            continue
        try:
            chunk = sock.recv(int(min(budget, 2048)))
        except BlockingIOError:
            time.sleep(0.002)
            continue
        if not chunk:
            emit({"ev": "close", "at": now_ms(), "code": 1006, "reason": "connection lost"})
            break
        budget -= len(chunk)
        pending += chunk
        # Parse every whole frame received so far (server frames are not masked).
        while True:
            if len(pending) < 2:
                break
            b0, b1 = pending[0], pending[1]
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            at = 2
            if n == 126:
                if len(pending) < 4:
                    break
                n = struct.unpack(">H", pending[2:4])[0]
                at = 4
            elif n == 127:
                if len(pending) < 10:
                    break
                n = struct.unpack(">Q", pending[2:10])[0]
                at = 10
            if len(pending) < at + n:
                break
            payload = pending[at : at + n]
            pending = pending[at + n :]
            stamp = now_ms()
            if opcode == 0x9:
                # RFC 6455 section 5.5.2: a ping is answered with a pong carrying the same payload.
                sock.setblocking(True)
                sock.sendall(client_frame(0xA, payload))
                sock.setblocking(False)
            elif opcode == 0x1:
                emit({"ev": "text", "at": stamp, "msg": json.loads(payload.decode("utf-8"))})
            elif opcode == 0x2:
                data.write(struct.pack("<I", len(payload)))
                data.write(payload)
                if len(payload) >= 8 and payload[0] == 1:
                    newest_seq = struct.unpack("<I", payload[4:8])[0]
                emit({"ev": "bin", "at": stamp, "len": len(payload)})
            elif opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                emit({"ev": "close", "at": stamp, "code": code, "reason": payload[2:].decode("utf-8", "replace")})
                closed = True
                break
    data.close()
    try:
        sock.setblocking(True)
        sock.sendall(client_frame(0x8, struct.pack(">H", 1000)))
    except OSError:
        pass
    sock.close()
    emit({"ev": "end", "at": now_ms()})


if __name__ == "__main__":
    main()
