#!/usr/bin/python3
"""Run N libtorrent (2.0.x) sessions forming a small DHT on loopback, for interop tests.

Usage: /usr/bin/python3 lt_dht.py --ips 127.0.10.1,127.0.10.2 --port 6881 [--workdir DIR]

One session per IP, listening (TCP + UDP DHT) on IP:PORT, no bootstrap routers, all
sessions joined to each other with add_dht_node. Controlled with JSON lines:
stdin commands, stdout events (one JSON object per line, flushed); stderr is a log.

  (startup)                               -> {"event":"ready","nodes":[{"ip","port","node_id"}..]}
  {"cmd":"add_node","addr":"IP:PORT"}     -> {"event":"ok","cmd":"add_node"}
  {"cmd":"seed","session":I}              -> {"event":"seeding","info_hash":HEX40,"peer":"IP:PORT",
                                              "torrent_file":PATH}   (1 MiB v1 torrent, 16 KiB pieces)
  {"cmd":"find","session":I,"info_hash":HEX40}
                                          -> {"event":"ok","cmd":"find"}, then once per distinct peer:
                                             {"event":"peer","info_hash":HEX40,"peer":"IP:PORT","source":ALERT}
  {"cmd":"stats"}                         -> {"event":"stats","sessions":[{"ip","port","dht_nodes"}..]}
  {"cmd":"quit"} or stdin EOF             -> exit 0 (also exits if the parent process dies)
  anything else                           -> {"event":"error","message":...}

Seeded and searched torrents get force_dht_announce() every second; a find also runs
session.dht_get_peers() every second. Peer sources: dht_get_peers_reply_alert (DHT values),
outgoing peer_connect_alert (libtorrent dialled it; incoming connections are ignored).
The finding session's own address is never reported.
"""
import argparse, json, os, shutil, sys, tempfile, threading, time, warnings
import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)
C = lt.alert.category_t
MASK = (C.error_notification | C.status_notification | C.dht_notification | C.connect_notification
        | C.peer_notification | C.dht_operation_notification | C.storage_notification
        | C.tracker_notification | C.ip_block_notification)
out_lock, state_lock = threading.Lock(), threading.Lock()
announce = []      # (session, handle, info-hash to dht_get_peers or None), redone every second
finds = {}         # (session index, v1 hex info-hash) -> set of peers already reported


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


def report(i, ih, peer, source):
    with state_lock:
        seen = finds.get((i, ih))
        if seen is None or peer in seen:
            return
        seen.add(peer)
    emit({"event": "peer", "info_hash": ih, "peer": peer, "source": source})


def handle_alert(i, a):
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
    if isinstance(a, (lt.listen_failed_alert, lt.torrent_error_alert)):
        log(name, a.message())


def pump(sessions, stop, cleanup):
    last, ppid = 0.0, os.getppid()
    while not stop.is_set():
        for i, ses in enumerate(sessions):
            for a in ses.pop_alerts():
                handle_alert(i, a)
        now = time.time()
        if now - last >= 1.0:
            last = now
            with state_lock:
                hs = list(announce)
            for ses, h, ih in hs:
                if h.is_valid():
                    h.force_dht_announce()
                if ih is not None:
                    ses.dht_get_peers(ih)
            if os.getppid() != ppid:  # parent died: we were reparented
                log("parent died")
                cleanup()
                os._exit(0)
        time.sleep(0.02)


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
                    raise SystemExit("listen failed on %s: %s" % (ips[i], a.message()))
        time.sleep(0.02)
    return [p or ses.listen_port() for p, ses in zip(ports, sessions)]


def cmd_seed(sessions, ips, ports, workdir, i):
    n = len(announce)
    path = os.path.join(workdir, "seed-%d-%d.bin" % (i, n))
    with open(path, "wb") as f:
        f.write(os.urandom(1 << 20))
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, workdir)
    tpath = path + ".torrent"
    with open(tpath, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = lt.torrent_info(tpath), workdir
    h = sessions[i].add_torrent(atp)
    deadline = time.time() + 20
    while h.status().state != lt.torrent_status.seeding:
        if time.time() > deadline:
            raise RuntimeError("torrent did not reach seeding state: %s" % h.status().state)
        time.sleep(0.02)
    with state_lock:
        announce.append((sessions[i], h, None))
    h.force_dht_announce()
    emit({"event": "seeding", "info_hash": str(h.info_hashes().v1),
          "peer": "%s:%d" % (ips[i], ports[i]), "torrent_file": tpath})


def cmd_find(sessions, ips, ports, workdir, i, ih):
    ih = ih.lower()
    if len(ih) != 40 or any(c not in "0123456789abcdef" for c in ih):
        raise ValueError("info_hash must be 40 hex digits")
    atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih)
    atp.save_path = os.path.join(workdir, "find-%d-%s" % (i, ih))
    sha1 = lt.sha1_hash(bytes.fromhex(ih))
    if sessions[i].find_torrent(sha1).is_valid():
        raise ValueError("session %d already has torrent %s" % (i, ih))
    with state_lock:  # never report the finder itself (it announces too)
        finds.setdefault((i, ih), set()).add("%s:%d" % (ips[i], ports[i]))
    h = sessions[i].add_torrent(atp)
    with state_lock:
        announce.append((sessions[i], h, sha1))
    h.force_dht_announce()
    sessions[i].dht_get_peers(sha1)  # plain DHT lookup: dht_get_peers_reply_alert
    emit({"event": "ok", "cmd": "find"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ips", required=True)
    ap.add_argument("--port", type=int, default=6881)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    ips = [x.strip() for x in args.ips.split(",") if x.strip()]
    workdir = args.workdir or tempfile.mkdtemp(prefix="lt_dht_")
    os.makedirs(workdir, exist_ok=True)
    sessions = [make_session(ip, args.port) for ip in ips]
    ports = wait_listening(sessions, ips)
    for i, ses in enumerate(sessions):
        for j in range(len(sessions)):
            if i != j:
                ses.add_dht_node((ips[j], ports[j]))
    ids, deadline = [None] * len(sessions), time.time() + 3
    while None in ids and time.time() < deadline:
        ids = [node_id(s) for s in sessions]
        time.sleep(0.05)
    stop = threading.Event()
    cleanup = (lambda: None) if args.workdir else (lambda: shutil.rmtree(workdir, ignore_errors=True))
    threading.Thread(target=pump, args=(sessions, stop, cleanup), daemon=True).start()
    emit({"event": "ready", "nodes": [{"ip": ip, "port": p, "node_id": nid}
                                      for ip, p, nid in zip(ips, ports, ids)]})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            c = json.loads(line)
            cmd = c.get("cmd") if isinstance(c, dict) else None
            if cmd == "quit":
                break
            elif cmd == "add_node":
                host, _, port = str(c["addr"]).rpartition(":")
                for ses in sessions:
                    ses.add_dht_node((host.strip("[]"), int(port)))
                emit({"event": "ok", "cmd": "add_node"})
            elif cmd in ("seed", "find"):
                i = int(c.get("session", 0))
                if not 0 <= i < len(sessions):
                    raise ValueError("no session %d" % i)
                if cmd == "seed":
                    cmd_seed(sessions, ips, ports, workdir, i)
                else:
                    cmd_find(sessions, ips, ports, workdir, i, str(c["info_hash"]))
            elif cmd == "stats":
                emit({"event": "stats", "sessions": [
                    {"ip": ip, "port": p, "dht_nodes": s.status().dht_nodes}
                    for ip, p, s in zip(ips, ports, sessions)]})
            else:
                raise ValueError("unknown command: %r" % (cmd,))
        except Exception as e:
            emit({"event": "error", "message": "%s: %s" % (type(e).__name__, e)})
    stop.set()
    cleanup()
    sys.stdout.flush()
    os._exit(0)  # skip the slow session destructors


if __name__ == "__main__":
    main()
