#!/usr/bin/python3
"""Run N libtorrent (2.0.x) sessions forming a small DHT on loopback, for interop tests.

Usage: /usr/bin/python3 lt_dht.py --ips 127.0.10.1,127.0.10.2 --port 6881 [--workdir DIR]

One session per IP, listening (TCP + UDP DHT) on IP:PORT, no bootstrap routers, all
sessions joined to each other with add_dht_node. Controlled with JSON lines:
stdin commands, stdout events (one JSON object per line, flushed); stderr is a log.

  (startup)                               -> {"event":"ready","nodes":[{"ip","port","node_id"}..]}
  {"cmd":"add_node","addr":"IP:PORT"}     -> {"event":"ok","cmd":"add_node"}
  {"cmd":"seed","session":I[,"size_mib":N][,"piece_kib":K]}
                                          -> {"event":"seeding","info_hash":HEX40,"peer":"IP:PORT",
                                              "torrent_file":PATH}   (v1 torrent of one file of N MiB
                                              of random bytes, K KiB pieces; default N=1, K=16)
  {"cmd":"find","session":I,"info_hash":HEX40}
                                          -> {"event":"ok","cmd":"find"}, then once per distinct peer:
                                             {"event":"peer","info_hash":HEX40,"peer":"IP:PORT","source":ALERT}
                                             and once, when the metadata arrived and verified
                                             (metadata_received_alert):
                                             {"event":"metadata","info_hash":HEX40,"session":I,
                                              "elapsed_s":SECONDS since the find command was read}
  {"cmd":"remove","session":I,"info_hash":HEX40}
                                          -> {"event":"ok","cmd":"remove"}  (the torrent is removed
                                             from that session and no longer announced)
  {"cmd":"fresh_session","ip":"127.x.y.z"}
                                          -> {"event":"ok","cmd":"fresh_session","session":I,"port":P}
                                             A new session on IP (port 0: an ephemeral port) with the
                                             same settings, told every other session's address (and
                                             every add_node address) with add_dht_node; the others
                                             are not told of it. It replies once it listens, before
                                             its DHT has heard back from anyone: a later find there
                                             times a brand-new libtorrent, DHT bootstrap included.
  {"cmd":"stats"}                         -> {"event":"stats","sessions":[{"ip","port","dht_nodes"}..]}
  {"cmd":"quit"} or stdin EOF             -> exit 0 (also exits if the parent process dies)
  anything else                           -> {"event":"error","message":...}

Seeded and searched torrents get force_dht_announce() every second; a find also runs
session.dht_get_peers() every second. Peer sources: dht_get_peers_reply_alert (DHT values),
outgoing peer_connect_alert (libtorrent dialled it; incoming connections are ignored).
The finding session's own address is never reported. Each session has its own thread
blocked in wait_for_alert, so events (and elapsed_s) lag libtorrent by well under 1 ms;
a find's "ok" is always written before any of its peer or metadata events.
"""
import argparse, json, os, shutil, sys, tempfile, threading, time, warnings
import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)
C = lt.alert.category_t
MASK = (C.error_notification | C.status_notification | C.dht_notification | C.connect_notification
        | C.peer_notification | C.dht_operation_notification | C.storage_notification
        | C.tracker_notification | C.ip_block_notification)
out_lock, state_lock = threading.RLock(), threading.Lock()  # out_lock may nest (see find)
# Every libtorrent call but wait_for_alert holds this lock. With calls from
# the alert threads, the ticker and the command loop at once, the binding
# crashed (SIGSEGV) now and then under CPU load; serialised, it does not.
# Lock order: lt_lock, then out_lock, then state_lock.
lt_lock = threading.RLock()
announce = []      # (session, handle, info-hash to dht_get_peers or None), redone every second
finds = {}         # (session index, v1 hex info-hash) -> set of peers already reported
find_started = {}  # (session index, v1 hex info-hash) -> monotonic time of the find; popped on metadata
extra_nodes = []   # (host, port) given with add_node, told to fresh sessions too


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def log(*a):
    print("lt_dht:", *a, file=sys.stderr, flush=True)


def make_session(ip, port):
    return lt.session({
        "listen_interfaces": "%s:%d" % (ip, port), "enable_dht": True, "dht_bootstrap_nodes": "",
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False, "enable_ip_notifier": False,
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False, "allow_multiple_connections_per_ip": True,
        "dht_block_ratelimit": 1000000, "dht_upload_rate_limit": 10000000,
        "outgoing_interfaces": ip, "alert_mask": MASK})


def node_id(ses):
    try:
        ids = ses.dht_state().get(b"node-id") or []
        return ids[0][:20].hex() if ids else None
    except Exception:
        return None


def ep_str(ep):
    return "%s:%d" % (ep[0], ep[1])


def parse_info_hash(ih):
    ih = str(ih).lower()
    if len(ih) != 40 or any(c not in "0123456789abcdef" for c in ih):
        raise ValueError("info_hash must be 40 hex digits")
    return ih


def report(i, ih, peer, source):
    with state_lock:
        seen = finds.get((i, ih))
        if seen is None or peer in seen:
            return
        seen.add(peer)
    emit({"event": "peer", "info_hash": ih, "peer": peer, "source": source})


def handle_alert(i, a, now):
    name = type(a).__name__
    if name == "dht_get_peers_reply_alert":
        ih = str(a.info_hash)
        for ep in a.peers():
            report(i, ih, ep_str(ep), name)
    elif name == "peer_connect_alert" and "incoming" not in a.message():  # we dialled it
        try:
            report(i, str(a.handle.info_hashes().v1), ep_str(a.endpoint), name)
        except Exception:
            pass
    elif name == "metadata_received_alert":
        try:
            ih = str(a.handle.info_hashes().v1)
        except Exception:
            return
        with state_lock:
            started = find_started.pop((i, ih), None)
        if started is not None:
            emit({"event": "metadata", "info_hash": ih, "session": i,
                  "elapsed_s": round(now - started, 6)})
    if isinstance(a, (lt.listen_failed_alert, lt.torrent_error_alert)):
        log(name, a.message())


def alert_loop(i, ses, stop):
    """One per session: wakes as soon as libtorrent posts an alert."""
    while not stop.is_set():
        if ses.wait_for_alert(200) is None:
            continue
        with lt_lock:
            alerts = ses.pop_alerts()
            now = time.monotonic()
            for a in alerts:
                handle_alert(i, a, now)


def ticker(stop, cleanup):
    ppid = os.getppid()
    while not stop.wait(1.0):
        with state_lock:
            hs = list(announce)
        with lt_lock:
            for ses, h, ih in hs:
                if h.is_valid():
                    h.force_dht_announce()
                if ih is not None:
                    ses.dht_get_peers(ih)
        if os.getppid() != ppid:  # parent died: we were reparented
            log("parent died")
            cleanup()
            os._exit(0)


def wait_listening(sessions, ips, timeout=10.0):
    """Return the real listen port of each session once TCP and UDP are listening."""
    ports, kinds = [None] * len(sessions), [set() for _ in sessions]
    deadline = time.time() + timeout
    while time.time() < deadline and any(len(k) < 2 for k in kinds):
        for i, ses in enumerate(sessions):
            for a in ses.pop_alerts():
                if isinstance(a, lt.listen_succeeded_alert):
                    kinds[i].add(str(a.socket_type))
                    ports[i] = a.port
                elif isinstance(a, lt.listen_failed_alert):
                    raise RuntimeError("listen failed on %s: %s" % (ips[i], a.message()))
        time.sleep(0.005)
    return [p or ses.listen_port() for p, ses in zip(ports, sessions)]


class Swarm:
    def __init__(self, ips, port, workdir):
        self.ips, self.workdir, self.stop = list(ips), workdir, threading.Event()
        self.sessions = [make_session(ip, port) for ip in self.ips]
        self.ports = wait_listening(self.sessions, self.ips)
        for i, ses in enumerate(self.sessions):
            for j in range(len(self.sessions)):
                if i != j:
                    ses.add_dht_node((self.ips[j], self.ports[j]))

    def start_threads(self, cleanup):
        threading.Thread(target=ticker, args=(self.stop, cleanup), daemon=True).start()
        for i, ses in enumerate(self.sessions):
            threading.Thread(target=alert_loop, args=(i, ses, self.stop), daemon=True).start()

    def session(self, c):
        i = int(c.get("session", 0))
        if not 0 <= i < len(self.sessions):
            raise ValueError("no session %d" % i)
        return i

    def seed(self, i, size_mib, piece_kib):
        if not (0 < size_mib <= 4096 and 16 <= piece_kib <= 65536 and piece_kib & (piece_kib - 1) == 0):
            raise ValueError("size_mib must be in (0, 4096], piece_kib a power of two >= 16")
        with state_lock:
            n = len(announce)
        path = os.path.join(self.workdir, "seed-%d-%d.bin" % (i, n))
        left = int(size_mib * (1 << 20))
        with open(path, "wb") as f:
            while left > 0:
                chunk = min(left, 1 << 22)
                f.write(os.urandom(chunk))
                left -= chunk
        fs = lt.file_storage()
        lt.add_files(fs, path)
        ct = lt.create_torrent(fs, piece_kib * 1024, flags=lt.create_torrent.v1_only)
        lt.set_piece_hashes(ct, self.workdir)
        tpath = path + ".torrent"
        with open(tpath, "wb") as f:
            f.write(lt.bencode(ct.generate()))
        atp = lt.add_torrent_params()
        atp.ti, atp.save_path = lt.torrent_info(tpath), self.workdir
        h = self.sessions[i].add_torrent(atp)
        deadline = time.time() + 20 + size_mib / 16.0
        while h.status().state != lt.torrent_status.seeding:
            if time.time() > deadline:
                raise RuntimeError("torrent did not reach seeding state: %s" % h.status().state)
            time.sleep(0.02)
        with state_lock:
            announce.append((self.sessions[i], h, None))
        h.force_dht_announce()
        emit({"event": "seeding", "info_hash": str(h.info_hashes().v1),
              "peer": "%s:%d" % (self.ips[i], self.ports[i]), "torrent_file": tpath})

    def find(self, i, ih, started):
        ih = parse_info_hash(ih)
        atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih)
        atp.save_path = os.path.join(self.workdir, "find-%d-%s" % (i, ih))
        sha1 = lt.sha1_hash(bytes.fromhex(ih))
        ses = self.sessions[i]
        if ses.find_torrent(sha1).is_valid():
            raise ValueError("session %d already has torrent %s" % (i, ih))
        with state_lock:  # never report the finder itself (it announces too)
            finds.setdefault((i, ih), set()).add("%s:%d" % (self.ips[i], self.ports[i]))
            find_started[(i, ih)] = started
        # The alert threads answer within a millisecond: hold the output until
        # "ok" is out, so no peer or metadata event of this find precedes it.
        with out_lock:
            h = ses.add_torrent(atp)
            with state_lock:
                announce.append((ses, h, sha1))
            h.force_dht_announce()
            ses.dht_get_peers(sha1)  # plain DHT lookup: dht_get_peers_reply_alert
            emit({"event": "ok", "cmd": "find"})

    def remove(self, i, ih):
        ih = parse_info_hash(ih)
        ses = self.sessions[i]
        h = ses.find_torrent(lt.sha1_hash(bytes.fromhex(ih)))
        if not h.is_valid():
            raise ValueError("session %d has no torrent %s" % (i, ih))
        with state_lock:
            announce[:] = [e for e in announce if not (e[0] is ses and e[1] == h)]
            find_started.pop((i, ih), None)
        ses.remove_torrent(h)
        emit({"event": "ok", "cmd": "remove"})

    def fresh_session(self, ip):
        ses = make_session(ip, 0)
        port = wait_listening([ses], [ip])[0]
        for addr in list(zip(self.ips, self.ports)) + extra_nodes:
            ses.add_dht_node(addr)
        i = len(self.sessions)
        self.sessions.append(ses)
        self.ips.append(ip)
        self.ports.append(port)
        threading.Thread(target=alert_loop, args=(i, ses, self.stop), daemon=True).start()
        emit({"event": "ok", "cmd": "fresh_session", "session": i, "port": port})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ips", required=True)
    ap.add_argument("--port", type=int, default=6881)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    ips = [x.strip() for x in args.ips.split(",") if x.strip()]
    workdir = args.workdir or tempfile.mkdtemp(prefix="lt_dht_")
    os.makedirs(workdir, exist_ok=True)
    swarm = Swarm(ips, args.port, workdir)
    ids, deadline = [None] * len(ips), time.time() + 3
    while None in ids and time.time() < deadline:
        ids = [node_id(s) for s in swarm.sessions]
        time.sleep(0.05)
    cleanup = (lambda: None) if args.workdir else (lambda: shutil.rmtree(workdir, ignore_errors=True))
    swarm.start_threads(cleanup)
    emit({"event": "ready", "nodes": [{"ip": ip, "port": p, "node_id": nid}
                                      for ip, p, nid in zip(ips, swarm.ports, ids)]})
    for line in sys.stdin:
        started = time.monotonic()
        if not line.strip():
            continue
        try:
            c = json.loads(line)
            with lt_lock:
                handled = dispatch(swarm, c, started)
            if handled == "quit":
                break
        except Exception as e:
            emit({"event": "error", "message": "%s: %s" % (type(e).__name__, e)})
    swarm.stop.set()
    cleanup()
    sys.stdout.flush()
    os._exit(0)  # skip the slow session destructors


def dispatch(swarm, c, started):
    """Runs one command (with lt_lock held); returns "quit" to stop."""
    cmd = c.get("cmd") if isinstance(c, dict) else None
    if cmd == "quit":
        return "quit"
    elif cmd == "add_node":
        host, _, port = str(c["addr"]).rpartition(":")
        addr = (host.strip("[]"), int(port))
        extra_nodes.append(addr)
        for ses in swarm.sessions:
            ses.add_dht_node(addr)
        emit({"event": "ok", "cmd": "add_node"})
    elif cmd == "seed":
        swarm.seed(swarm.session(c), float(c.get("size_mib", 1)), int(c.get("piece_kib", 16)))
    elif cmd == "find":
        swarm.find(swarm.session(c), c["info_hash"], started)
    elif cmd == "remove":
        swarm.remove(swarm.session(c), c["info_hash"])
    elif cmd == "fresh_session":
        swarm.fresh_session(str(c["ip"]))
    elif cmd == "stats":
        emit({"event": "stats", "sessions": [
            {"ip": ip, "port": p, "dht_nodes": s.status().dht_nodes}
            for ip, p, s in zip(swarm.ips, swarm.ports, swarm.sessions)]})
    else:
        raise ValueError("unknown command: %r" % (cmd,))
    return None


if __name__ == "__main__":
    main()
