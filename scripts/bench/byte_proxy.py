"""A TCP proxy that counts bytes each way per connection: byte_proxy.py LISTEN_PORT TARGET_PORT OUT.json.
OUT.json is rewritten after every closed connection: [{"up": n, "down": n}, ...]."""
import json, socket, sys, threading

listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
conns = []

def pump(src, dst, rec, key):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            rec[key] += len(b)
            dst.sendall(b)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def handle(c):
    s = socket.create_connection(("127.0.0.1", target))
    rec = {"up": 0, "down": 0}
    with lock:
        conns.append(rec)
    t = threading.Thread(target=pump, args=(s, c, rec, "down"))
    t.start()
    pump(c, s, rec, "up")
    t.join()
    c.close(); s.close()
    with lock:
        json.dump(conns, open(out + ".tmp", "w"))
        import os; os.replace(out + ".tmp", out)

srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen)); srv.listen(64)
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
