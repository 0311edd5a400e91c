#!/usr/bin/env python3
"""The scene of the README's screenshots, on loopback only, ending by itself.

    python3 assets/capture-scenario.py SECONDS

Two processes (named with prctl so the dashboard shows the names): `orders-api`, a server on
127.0.0.1:8080 that answers every request but never closes one connection in four (its
peers close: a CLOSE_WAIT leak that grows), and `batch-job`, which opens and closes 40 short
connections a second from 127.0.0.3 (TIME_WAIT piles up toward 127.0.0.1:8080).
"""
import ctypes
import os
import socket
import sys
import threading
import time


def name(n):
    ctypes.CDLL(None).prctl(15, n.encode(), 0, 0, 0)  # PR_SET_NAME


def server(until):
    name("orders-api")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 8080))
    s.listen(512)
    s.settimeout(0.5)
    kept, n = [], 0
    while time.time() < until:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        c.recv(1024)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        n += 1
        if n % 4 == 0:
            kept.append(c)  # the leak: never closed
        else:
            threading.Timer(0.2, c.close).start()


def client(until):
    name("batch-job")
    time.sleep(0.5)
    while time.time() < until:
        try:
            c = socket.socket()
            c.bind(("127.0.0.3", 0))
            c.connect(("127.0.0.1", 8080))
            c.sendall(b"GET / HTTP/1.1\r\nHost: orders\r\n\r\n")
            c.recv(1024)
            c.close()
        except OSError:
            pass
        time.sleep(0.025)


secs = float(sys.argv[1]) if len(sys.argv) > 1 else 120
until = time.time() + secs
if os.fork() == 0:
    client(until)
    os._exit(0)
server(until)
os.wait()
